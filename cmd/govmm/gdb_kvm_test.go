package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest/lessons"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// watchWriter collects what is written to it and closes seen when the
// text first contains want.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// symbolsOf reads an ELF file's symbol addresses.
func symbolsOf(t *testing.T, path string) map[string]uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, s := range syms {
		m[s.Name] = s.Value
	}
	return m
}

// TestGDBSession: a scripted session of the real gdb (gdb -batch) on the
// long-mode lesson through -gdb: gdb attaches to the guest held before its
// first instruction, stops at a breakpoint in 64-bit code (long_mode),
// single-steps the instruction that sets RSP and reads it, reads EFER and
// a page-table entry the guest wrote, and continues; the guest finishes
// normally and gdb says so. In testvm's emulated machine, where
// breakpoints cannot stop a nested guest, the session single-steps to
// registers the guest sets instead (gdbScript).
func TestGDBSession(t *testing.T) {
	kvmtest.Require(t)
	gdb, err := lessons.FindGDB(kvmtest.CacheDir())
	if err != nil {
		kvmtest.Unavailable(t, err.Error())
	}
	dir := buildLessons(t)
	image := filepath.Join(dir, "longmode.elf")
	syms := symbolsOf(t, image)
	tmp := t.TempDir()
	sock, serial := filepath.Join(tmp, "gdb.sock"), filepath.Join(tmp, "serial")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	args := append([]string{"-kernel", image, "-gdb", "unix:" + sock, "-serial", "file:" + serial}, lessons.Flags...)
	stderr := &watchWriter{want: "waiting for gdb", seen: make(chan struct{})}
	type result struct {
		status int
		err    error
	}
	ended := make(chan result, 1)
	go func() {
		status, err := run(ctx, args, nil, &bytes.Buffer{}, stderr)
		ended <- result{status, err}
	}()
	select {
	case <-stderr.seen:
	case r := <-ended:
		t.Fatalf("govmm ended before gdb came: %d, %v\n%s", r.status, r.err, stderr.String())
	case <-ctx.Done():
		t.Fatalf("govmm did not wait for gdb:\n%s", stderr.String())
	}
	emulatedCPU := kvmtest.SoftwareCPU()
	scriptFile := filepath.Join(tmp, "script.gdb")
	if err := os.WriteFile(scriptFile, []byte(strings.Join(gdbScript(sock, emulatedCPU), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(append([]string{}, gdb.Argv...), "-batch", "-nx", image, "-x", scriptFile)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+tmp) // gdb's index cache, history
	out, gdbErr := cmd.CombinedOutput()
	r := <-ended
	if gdbErr != nil || r.status != 0 || r.err != nil {
		t.Fatalf("gdb: %v; govmm: %d, %v\ngdb:\n%s\ngovmm:\n%s", gdbErr, r.status, r.err, out, stderr.String())
	}
	text := string(out)
	want := []string{
		`"Hello from 64-bit long mode!\n"`,
		"[Inferior 1 (Remote target) exited normally]",
	}
	if emulatedCPU {
		// testvm's machine: QEMU's software SVM raises no #BP intercept for
		// an int3 and matches no debug registers for the nested guest, so
		// nothing stops at breakpoints there (single steps work): the
		// session steps to registers the guest sets instead.
		want = append(want, "rdx            0x3fb", "rax            0x3")
	} else {
		want = append(want,
			fmt.Sprintf("Breakpoint 1, 0x%016x in long_mode ()", syms["long_mode"]),
			fmt.Sprintf("rip            %#x", syms["long_mode"]+7), // after the 7-byte mov rsp, imm32
			"rsp            0x7c00",
			"$1 = 0x500", // EFER: LME and LMA, which the guest turned on
		)
		// The page-table entry the guest wrote: pdpt, present and
		// writable; the CPU sets the accessed bit (0x20) when it walks
		// through it.
		pml4 := fmt.Sprintf("%#x:\t0x%016x", syms["pml4"], syms["pdpt"]|3)
		pml4A := fmt.Sprintf("%#x:\t0x%016x", syms["pml4"], syms["pdpt"]|0x23)
		if !strings.Contains(text, pml4) && !strings.Contains(text, pml4A) {
			t.Errorf("gdb's output lacks the PML4 entry %q (or with the accessed bit):\n%s", pml4, text)
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("gdb's output lacks %q:\n%s", w, text)
		}
	}
	if got, _ := os.ReadFile(serial); !strings.Contains(string(got), "and again through the page tables' second mapping") {
		t.Errorf("the guest's serial output is short:\n%s", got)
	}
}

// gdbScript is the session: a breakpoint in 64-bit code, a step, the
// registers and memory the guest set, continue. Where breakpoints cannot
// stop the guest (see TestGDBSession), it single-steps to the line
// control register's OUT instead.
func gdbScript(sock string, noBreakpoints bool) []string {
	s := []string{"target remote " + sock}
	if noBreakpoints {
		s = append(s,
			"while $rax != 3",
			"  stepi",
			"end",
			"info registers rdx rax",
		)
	} else {
		s = append(s,
			"break long_mode",
			"continue",
			"stepi", // mov rsp, 0x7c00
			"info registers rip rsp",
			"p/x $efer",
			"x/gx &pml4",
		)
	}
	return append(s, "x/s &msg_long", "continue")
}
