package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest/lessons"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// stepSession runs govmm step on a lesson with commands from a pipe and
// returns what it printed.
func stepSession(t *testing.T, lesson, commands string, flags ...string) (string, int) {
	t.Helper()
	dir := buildLessons(t)
	in := filepath.Join(t.TempDir(), "commands")
	if err := os.WriteFile(in, []byte(commands), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args := append(append([]string{"step", "-kernel", filepath.Join(dir, lesson+".elf"), "-serial", "none"}, lessons.Flags...), flags...)
	var out, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	status, err := run(ctx, args, f, &out, &stderr)
	if err != nil {
		t.Fatalf("govmm %q = %d, %v\nstdout:\n%s\nstderr:\n%s", args, status, err, out.String(), stderr.String())
	}
	return out.String(), status
}

var ripLine = regexp.MustCompile(`(?m)^rip=(0x[0-9a-f]+) (.*?)(    ; .*)?$`)

// TestStepperThroughAPipe drives govmm step with commands on a pipe
// through the first lesson: single steps visit the real-mode guest's
// instructions one by one with their register changes, the step over the
// OUT is one instruction like every other, a break on the serial port
// stops at its first access after that, breaks on exits stop at each, and
// the session ends with the guest's exit.
func TestStepperThroughAPipe(t *testing.T) {
	kvmtest.Require(t)
	out, status := stepSession(t, "hello16", strings.Join([]string{
		"step 9", // from cli on, through the OUT of the line control register
		"b port 0x3f8-0x3ff",
		"c", // the first access to COM1 after this: the IN of putc
		"b clear",
		"b exit io",
		"c",
		"",  // repeat: the next exit
		"r", // registers
		"x message 8",
		"b clear",
		"c", // to the guest's exit write, then its end
		"c",
	}, "\n")+"\n")
	if status != 0 {
		t.Errorf("status = %d, want 0\n%s", status, out)
	}
	var got []string
	for _, m := range ripLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	// The program in order: each step runs one instruction, the OUT too.
	// With hardware virtualization the step at mov ss runs mov sp as well:
	// the CPU holds debug traps for one instruction after loading SS
	// (Intel SDM vol. 3, 6.8.3); KVM's emulator (PVM hosts) does not.
	program := []string{
		"0x7c00 cli", // the first stop
		"0x7c01 xor ax, ax",
		"0x7c03 mov ds, ax",
		"0x7c05 mov ss, ax",
		"0x7c07 mov sp, 0x7c00",
		"0x7c0a mov dx, 0x3fb",
		"0x7c0d mov al, 0x3",
		"0x7c0f out dx, al",
		"0x7c10 mov si, 0x7c33", // the step that ran the OUT
		"0x7c13 lodsb byte ptr [si]",
		"0x7c14 test al, al",
	}
	shadowed := append(append([]string{}, program[:4]...), program[5:]...)
	rest := []string{
		"0x7c27 in al, dx",  // break port: the IN of putc's first wait
		"0x7c31 out dx, al", // break exit io: the next exit is the OUT of 'H'...
		"0x7c27 in al, dx",  // ... and, an empty line repeating cont, the next IN
		"0x7c1f out 0xf4, al",
	}
	emulated := strings.Join(append(append([]string{}, program[:10]...), rest...), "\n")
	hardware := strings.Join(append(append([]string{}, shadowed[:10]...), rest...), "\n")
	if g := strings.Join(got, "\n"); g != emulated && g != hardware {
		t.Errorf("rip lines:\n%s\nwant (KVM emulating):\n%s\nor (hardware virtualization):\n%s\nsession:\n%s", g, emulated, hardware, out)
	}
	for _, s := range []string{
		"  changed: rflags=0x46", // after xor ax, ax: ZF and PF
		"  changed: rdx=0x3fb",   // after mov dx
		"  changed: rax=0x3",     // after mov al
		"  exit during the step: KVM_EXIT_IO out port 0x3fb size 1 data 0x3 -> serial (COM1)",
		"  exit: KVM_EXIT_IO in port 0x3fd size 1 -> serial (COM1)",
		"  exit: KVM_EXIT_IO out port 0x3f8 size 1 data 0x48 'H' -> serial (COM1)",
		"  the guest asks govmm to end the VM with status 0",
		"rsp=0000000000007bfe",              // regs, in putc
		"00007c33  48 65 6c 6c 6f 20 66 72", // x message 8: "Hello fr"
		"govmm step: the guest ended: power off, status 0",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("session lacks %q:\n%s", s, out)
		}
	}
}

// TestStepperHoldsEveryVCPU: with two vCPUs the stepper holds both from
// the start (the second, never started by the guest, waits in KVM_RUN
// for an INIT it will not get, and is kicked out of it), reads the held
// one's registers, and lets both go on to the guest's end.
func TestStepperHoldsEveryVCPU(t *testing.T) {
	kvmtest.Require(t)
	out, status := stepSession(t, "hello16", "s\nvcpu 1\nr\nvcpu 0\nc\nc\n", "-cpus", "2")
	for _, want := range []string{
		"rip=0x7c01 xor ax, ax    ; start+0x1\n  mode real, cs:ip 0000:7c01, cpl 0, vCPU 0",
		"rip=000000000000fff0", // vCPU 1 at the reset vector
		"cs=f000",
		"govmm step: the guest ended: power off, status 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("session lacks %q:\n%s", want, out)
		}
	}
	if status != 0 {
		t.Errorf("status = %d, want 0", status)
	}
}
