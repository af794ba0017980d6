package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vmm is one way to run the test guest: a command line for a guest
// command line, and the exit status that means the guest succeeded.
type vmm struct {
	name     string
	argv     func(cmdline string, verbose bool) []string
	okStatus int
}

// govmmVMM is govmm booting guest.elf at its 64-bit entry.
func govmmVMM(bin, elf string, memMiB int, cacheDir string) vmm {
	return vmm{name: "govmm", argv: func(cmdline string, verbose bool) []string {
		a := []string{bin, "-kernel", elf, "-mem", fmt.Sprintf("%dM", memMiB), "-append", cmdline,
			// The serial console into our stdout pipe: no terminal handling.
			"-serial", "file:/proc/self/fd/1", "-cache", cacheDir}
		if verbose {
			a = append(a, "-v")
		}
		return a
	}}
}

// withArgs is v under another name, with more arguments after its own.
func withArgs(v vmm, name string, extra ...string) vmm {
	argv := v.argv
	return vmm{name: name, okStatus: v.okStatus, argv: func(cmdline string, verbose bool) []string {
		return append(argv(cmdline, verbose), extra...)
	}}
}

// cvmmVMM is the C VMM booting guest.elf the same way.
func cvmmVMM(bin, elf string, memMiB int) vmm {
	return vmm{name: "cvmm", argv: func(cmdline string, verbose bool) []string {
		a := []string{bin}
		if verbose {
			a = append(a, "-v")
		}
		return append(a, "-m", strconv.Itoa(memMiB), elf, cmdline)
	}}
}

// qemuVMM is QEMU booting guest.elf through its PVH note. Its
// isa-debug-exit makes it exit with (status << 1) | 1.
func qemuVMM(bin, machine, elf string, memMiB int) vmm {
	return vmm{name: "qemu", okStatus: 1, argv: func(cmdline string, _ bool) []string {
		return []string{bin, "-enable-kvm", "-M", machine, "-cpu", "host", "-m", fmt.Sprintf("%dM", memMiB),
			"-nographic", "-no-reboot", "-kernel", elf, "-append", cmdline,
			"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"}
	}}
}

// runResult is what one run of a VMM gave.
type runResult struct {
	wall     time.Duration // exec to exit
	markSeen time.Duration // exec to the boot-timer line on stderr; 0: none
	markVMM  time.Duration // the time in that line, on the VMM's own clock
	status   int
	stdout   string
	stderr   string
}

// runOnce runs v on the guest command line and checks that the guest
// succeeded and printed want.
func runOnce(ctx context.Context, v vmm, cmdline string, verbose bool, timeout time.Duration, want string) (runResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := v.argv(cmdline, verbose)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout bytes.Buffer
	mw := &markWriter{}
	cmd.Stdout, cmd.Stderr = &stdout, mw
	cmd.WaitDelay = 2 * time.Second
	mw.start = time.Now()
	err := cmd.Run()
	res := runResult{wall: time.Since(mw.start), stdout: stdout.String(), stderr: mw.String()}
	res.markSeen, res.markVMM = mw.marks()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s did not finish within %v (%s): %s", v.name, timeout, strings.Join(argv, " "), tail(res.stdout+res.stderr))
	case errors.As(err, &exitErr):
		res.status = exitErr.ExitCode()
		if res.status < 0 {
			return res, fmt.Errorf("%s %q: %v:\n%s", v.name, cmdline, exitErr, tail(res.stdout+res.stderr))
		}
	case err != nil:
		return res, fmt.Errorf("run %s: %w", v.name, err)
	}
	if res.status != v.okStatus || !strings.Contains(res.stdout, want) {
		return res, fmt.Errorf("%s %q: exit status %d (want %d), output lacks %q or has more:\n%s",
			v.name, cmdline, res.status, v.okStatus, want, tail(res.stdout+res.stderr))
	}
	return res, nil
}

// markWriter collects a VMM's stderr and notes when the first boot-timer
// line arrived.
type markWriter struct {
	start time.Time
	mu    sync.Mutex
	buf   bytes.Buffer
	seen  time.Duration
	vmm   time.Duration
	found bool
}

func (m *markWriter) Write(p []byte) (int, error) {
	now := time.Since(m.start)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf.Write(p)
	if !m.found {
		for _, line := range strings.Split(m.buf.String(), "\n") {
			if _, us, ok := parseMark(line); ok {
				m.found, m.seen, m.vmm = true, now, time.Duration(us)*time.Microsecond
				break
			}
		}
	}
	return len(p), nil
}

func (m *markWriter) marks() (seen, vmm time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen, m.vmm
}

func (m *markWriter) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buf.String()
}

// markLine matches the boot-timer line govmm (devices/debugexit.go) and
// cvmm print: "boot-timer: mark 1 (0x01) at 1234 us (1.234ms) since VMM
// start".
var markLine = regexp.MustCompile(`^boot-timer: mark (\d+) .*?\bat (\d+) us\b`)

// parseMark returns a boot-timer line's label and microseconds.
func parseMark(line string) (label int, us int64, ok bool) {
	m := markLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
	if m == nil {
		return 0, 0, false
	}
	label, err1 := strconv.Atoi(m[1])
	us, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return label, us, true
}

// tail is the last lines of a program's output, for error messages.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
