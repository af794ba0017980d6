// Package testvm runs a program inside a throw-away QEMU virtual machine
// with software emulation (TCG) and an emulated AMD SVM CPU, in which
// Linux's kvm_amd module gives a working /dev/kvm: nested KVM on a host that
// has none. govmm's `go test -exec` wrapper (testvm/cmd/testvm-exec) uses it
// to run the KVM tests on such hosts.
//
// The VM boots a kernel with an initramfs built for each run: busybox, the
// KVM modules, a generated /init, and the files the program needs at their
// host paths. /init prints a marker line with the program's exit status and
// powers off; Run returns that status.
//
// QEMU before 10.2 has a race in its SVM emulation that can lose the
// emulated machine's timer interrupt and freeze it for good (see
// periodicTickArgs in tick.go). On those versions, as Config.QEMUVersion
// says (Find asks QEMU; an unknown version counts as old), the machine's
// kernel runs with a periodic tick (nohz=off highres=off), under which a
// lost wakeup is repeated on the next tick.
//
// A watchdog is the second guard: a frozen or silent machine fails the run
// within a minute instead of hanging it. From early in /init a background
// loop writes a heartbeat line to COM2 (/dev/ttyS1) every 2 s, which QEMU
// passes to Run through a pipe, apart from the console; the heartbeats and
// any console output are the machine's signs of life, so a program (or an
// interactive user's idle shell) may print nothing for as long as it
// likes. When no sign of life comes for half of Config.Watchdog (default
// 40 s; more at the start when there are many files to unpack), Run
// presses a key through QEMU's QMP monitor, a unix socket in its temporary
// folder, which can wake a machine frozen by QEMU's race, and notes the
// poke on Config.Log (default standard error), and that the machine woke
// if it did. When none comes for the whole of it, Run reads the emulated
// CPUs' registers and local APIC through the monitor, kills QEMU and
// returns a *StallError (errors.Is(err, ErrStalled)) with them and the
// guest's last lines.
package testvm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config says what VM to boot and what to run in it.
type Config struct {
	QEMU string // qemu-system-x86_64
	// QEMUVersion is QEMU's version, like "7.2.22" (Find asks QEMU). Below
	// 10.2, or when empty or unreadable, the emulated machine's kernel gets
	// a periodic tick, which keeps a QEMU race from freezing it (see
	// periodicTickArgs in tick.go).
	QEMUVersion string

	Kernel  string   // a bzImage with the serial console, initramfs and ACPI built in
	Modules []string // the KVM modules, in load order: irqbypass.ko, kvm.ko, kvm-amd.ko
	Busybox string   // a static busybox (Debian's busybox-static /bin/busybox)

	// Files are host files or directories (copied whole) that the VM gets
	// at the same absolute paths: the program, its data, fixtures.
	Files []string
	// Drives are host files the VM gets as disks, not copies: QEMU's
	// virtio-blk, /dev/vda for the first, /dev/vdb for the next. What the
	// program writes to them, and flushes, is in the host's file.
	Drives []Drive
	Env    []string // NAME=value, after PATH=/bin HOME=/tmp TMPDIR=/tmp GOVMM_REQUIRE_KVM=1
	Dir    string   // working directory in the VM; default "/"
	Argv   []string // the program and its arguments; Argv[0] is a path in the VM

	Mem     int64         // guest RAM in bytes; default 4 GiB
	CPUs    int           // default 1
	Timeout time.Duration // for the whole run; 0: only ctx limits it

	// Watchdog is how long the machine may show no sign of life (no
	// heartbeat, no console output) before Run gives up on it: halfway
	// through it presses a key through QEMU's monitor, which can wake a
	// machine frozen by QEMU's race; at the end it reads QEMU's registers,
	// kills QEMU and returns a *StallError (errors.Is ErrStalled). At the
	// start it allows a second more for each 20 MiB of files, which the
	// machine's kernel unpacks before /init starts the heartbeat. 0 means
	// DefaultWatchdog; negative turns the watchdog off.
	Watchdog time.Duration

	// Log gets the watchdog's notes, a line each: a poke, and the machine
	// waking after one (which means QEMU's race froze it). nil means
	// os.Stderr.
	Log io.Writer

	// SingleThreadTCG runs all vCPUs on one host thread
	// (-accel tcg,thread=single): slower, but it avoids the stalls seen with
	// multi-threaded TCG and nested KVM at -smp 2 (a soft lockup in
	// kvm_destroy_vm waiting on the other vCPU, a few boots in a hundred).
	SingleThreadTCG bool

	Stdout io.Writer // the guest's serial output, without the exit marker; nil discards it (os.Stdout when Interactive)

	// Interactive joins the VM's serial console to this process's standard
	// input and output: QEMU reads os.Stdin (in raw mode when it is a
	// terminal, with its own signal and Ctrl-A keys off, so that Ctrl-C and
	// Ctrl-A reach the program) and the program gets /dev/console, a
	// terminal, as its standard input, output and error. The terminal is
	// put back however QEMU ends.
	Interactive bool

	// QuietKernel keeps the emulated machine's own kernel messages (kvm's
	// notes on the nested guest, like "Unhandled WRMSR") off the console
	// while the program runs, so that its output is only its own. Always so
	// when Interactive. testvm-exec leaves them on: they explain failures.
	QuietKernel bool

	qmpSocket string // where QEMU's monitor listens; default qmp.sock in Run's temporary folder
}

// Drive is a host file the VM gets as a disk.
type Drive struct {
	Path     string
	ReadOnly bool
}

// DriveDevice is the VM's name for Config.Drives[i].
func DriveDevice(i int) string { return "/dev/vd" + string(rune('a'+i)) }

// Defaults for Config.
const (
	DefaultMem = 4 << 30
	// DefaultCPUs is 1: with two, multi-threaded TCG and nested KVM
	// sometimes stall for good (see SingleThreadTCG).
	DefaultCPUs = 1
)

// maxSocketPath is the longest path a unix socket can have on Linux
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// markerPrefix starts the lines /init prints before the program starts and
// after it exits; a random part follows it so that no program output can
// fake them. It begins with a control byte (ASCII RS) that terminals do not
// print, so that output ending in a possible start of the marker, which the
// scanner holds back until more comes, is as good as never what a user has
// just typed.
const markerPrefix = "\x1eGOVMM-TESTVM-"

// Run boots the VM that c describes, runs c.Argv in it, and returns the
// program's exit status. The guest's serial output streams to c.Stdout as
// it comes. An error means the program's status is unknown (the VM did not
// boot, crashed, timed out, or stalled, which gives a *StallError; QEMU is
// killed then) or the VM had no /dev/kvm (the status is then ExitNoKVM).
func Run(ctx context.Context, c Config) (int, error) {
	c, err := c.withDefaults()
	if err != nil {
		return -1, err
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	start, marker, err := newMarkers()
	if err != nil {
		return -1, err
	}
	init, err := initScript(c, start, marker)
	if err != nil {
		return -1, err
	}
	tmp, err := os.MkdirTemp("", "testvm-")
	if err != nil {
		return -1, fmt.Errorf("testvm: create a temporary folder (check TMPDIR): %w", err)
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initramfs.cpio")
	size, err := writeInitramfs(initrd, c, init)
	if err != nil {
		return -1, err
	}
	if size > c.Mem/2 {
		return -1, fmt.Errorf("testvm: the files for the VM take %d MiB, more than half its %d MiB of RAM: copy fewer files or raise Config.Mem", size>>20, c.Mem>>20)
	}

	qmp := c.qmpSocket
	if qmp == "" {
		qmp = filepath.Join(tmp, "qmp.sock")
	}
	if len(qmp) > maxSocketPath {
		return -1, fmt.Errorf("testvm: the path of QEMU's monitor socket, %s, is longer than a unix socket allows (%d bytes): set TMPDIR to a shorter folder", qmp, maxSocketPath)
	}
	scan := newExitScanner(c.Stdout, start, marker)
	q := c.runQEMU(ctx, qemuArgs(c, initrd, qmp), scan, machineMonitor{path: qmp, timeout: qmpTimeout}, bootGrace(size))
	scan.flush()
	return c.result(ctx, scan, q)
}

// result turns what the VM printed and how QEMU ended into Run's answer.
func (c Config) result(ctx context.Context, scan *exitScanner, q qemuRun) (int, error) {
	word, found := scan.result()
	var outErr error
	if scan.err != nil {
		outErr = fmt.Errorf("testvm: write the guest's output: %w", scan.err)
	}
	switch {
	case found && word == statusNoKVM:
		return ExitNoKVM, errors.Join(fmt.Errorf("testvm: the VM has no /dev/kvm after loading %s (see the kernel's lines above): the QEMU CPU must offer SVM (-cpu max) and the modules must match the kernel", strings.Join(baseNames(c.Modules), ", ")), outErr)
	case found && word == statusNoDir:
		return -1, errors.Join(fmt.Errorf("testvm: cannot cd to %s in the VM: add it to Config.Files", c.Dir), outErr)
	case found:
		rc, err := strconv.Atoi(word)
		if err != nil {
			return -1, fmt.Errorf("testvm: the VM ended with a garbled exit status %q", word)
		}
		return rc, outErr
	}
	if q.stall != nil {
		q.stall.Output = scan.tail.String()
		return -1, errors.Join(q.stall, outErr)
	}
	why := "the VM stopped before the program finished (kernel panic, or /init failed)"
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = fmt.Sprintf("the VM did not finish within %v and was killed", q.took.Round(time.Second))
	case ctx.Err() != nil:
		why = fmt.Sprintf("the run was cancelled after %v and the VM was killed", q.took.Round(time.Second))
	case q.err != nil:
		why = fmt.Sprintf("QEMU failed (%v)", q.err)
	}
	msg := fmt.Sprintf("testvm: %s; no exit status came back (heartbeats from the machine: %d).\nlast guest output:\n%s", why, q.beats, indent(scan.tail.String()))
	if s := strings.TrimSpace(q.stderr); s != "" {
		msg += "\nQEMU said:\n" + indent(lastBytes(s, 2000))
	}
	return -1, errors.Join(errors.New(msg), outErr)
}

func (c Config) withDefaults() (Config, error) {
	for _, p := range []struct{ what, path, fix string }{
		{"QEMU", c.QEMU, "apt-get install --no-install-recommends qemu-system-x86"},
		{"Kernel", c.Kernel, "use testvm.Find, which fetches Debian's cloud kernel"},
		{"Busybox", c.Busybox, "apt-get install busybox-static"},
	} {
		if p.path == "" {
			return c, fmt.Errorf("testvm: Config.%s is empty: %s", p.what, p.fix)
		}
	}
	if len(c.Argv) == 0 || strings.HasPrefix(c.Argv[0], "-") || strings.Contains(c.Argv[0], "=") {
		return c, fmt.Errorf("testvm: Config.Argv = %q: give the program's path first", c.Argv)
	}
	if c.Mem == 0 {
		c.Mem = DefaultMem
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.Mem < 64<<20 || c.CPUs < 1 {
		return c, fmt.Errorf("testvm: %d bytes of RAM and %d CPUs: give at least 64 MiB and 1 CPU", c.Mem, c.CPUs)
	}
	if c.Stdout == nil {
		c.Stdout = io.Discard
		if c.Interactive {
			c.Stdout = os.Stdout
		}
	}
	if c.Watchdog == 0 {
		c.Watchdog = DefaultWatchdog
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	return c, nil
}

// qemuArgs is QEMU's command line: a q35 machine with the "max" CPU, which
// under TCG offers SVM, COM1 on standard output, and no reboot, so that
// poweroff or a kernel panic (panic=-1) ends QEMU. The kernel command line
// is kernelCmdline's. Interactive runs give COM1 standard input too,
// through a stdio character device without QEMU's human monitor, its
// Ctrl-A escapes and its signal keys. COM2 carries the heartbeat to
// /dev/fd/3, the pipe runQEMU passes; QEMU's QMP monitor listens on the
// unix socket qmp for the watchdog.
func qemuArgs(c Config, initrd, qmp string) []string {
	accel := "tcg"
	if c.SingleThreadTCG {
		accel = "tcg,thread=single"
	}
	serial := []string{"-nographic", "-serial", "stdio"}
	if c.Interactive {
		serial = []string{"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con", "-display", "none", "-monitor", "none"}
	}
	args := []string{
		"-M", "q35", "-cpu", "max", "-accel", accel,
		"-m", fmt.Sprintf("%dM", c.Mem>>20), "-smp", strconv.Itoa(c.CPUs),
		"-nodefaults",
	}
	args = append(args, serial...)
	for i, d := range c.Drives {
		ro := ""
		if d.ReadOnly {
			ro = ",readonly=on"
		}
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=drive%d,format=raw,cache=writeback,discard=unmap%s", qemuOptionValue(d.Path), i, ro),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=drive%d", i))
	}
	args = append(args, "-chardev", "file,id=beat,path=/dev/fd/3", "-serial", "chardev:beat",
		"-qmp", "unix:"+qemuOptionValue(qmp)+",server=on,wait=off")
	return append(args, "-no-reboot",
		"-kernel", c.Kernel, "-initrd", initrd,
		"-append", kernelCmdline(c))
}

// kernelCmdline is the emulated machine's kernel command line: the serial
// console, no boot chatter, no reboot after a panic, and a periodic tick
// where this QEMU needs one (needsPeriodicTick).
func kernelCmdline(c Config) string {
	s := "console=ttyS0 quiet panic=-1"
	if needsPeriodicTick(c.QEMUVersion) {
		s += " " + periodicTickArgs
	}
	return s
}

// qemuOptionValue escapes s for a QEMU option list, where a comma is
// written twice.
func qemuOptionValue(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}

// writeInitramfs writes the initramfs to path and returns its data size.
func writeInitramfs(path string, c Config, init string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("testvm: create the initramfs: %w", err)
	}
	size, err := initramfs(f, c, init)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("testvm: write the initramfs: %w", cerr)
	}
	return size, err
}

// newMarkers returns the start marker and the exit marker, which the exit
// status follows.
func newMarkers() (start, exit string, err error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("testvm: random marker: %w", err)
	}
	base := markerPrefix + hex.EncodeToString(b)
	return base + "-START", base + "-EXIT=", nil
}

func baseNames(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	return out
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
