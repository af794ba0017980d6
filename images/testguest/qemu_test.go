package testguest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests run the guests under QEMU with software emulation (TCG), so
// they need no /dev/kvm: guest.elf through PVH, and the bzImage's 64-bit
// entry through testdata/linuxboot_shim.S.

const qemuMem = 128 << 20

type qemuRun struct {
	machine string // microvm or pc
	kernel  string
	initrd  string
	append  string
	iosize  int           // of isa-debug-exit: 1 when the guest writes 0xf5/0xf6
	timeout time.Duration // the guest is expected to run until killed
}

// runQEMU returns the serial output and QEMU's exit code (-1 if killed at
// the timeout).
func runQEMU(t *testing.T, r qemuRun) (string, int) {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"-M", r.machine, "-accel", "tcg", "-m", fmt.Sprint(qemuMem >> 20),
		"-no-reboot", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-device", fmt.Sprintf("isa-debug-exit,iobase=0xf4,iosize=%#x", r.iosize),
		"-kernel", r.kernel, "-append", r.append}
	if r.initrd != "" {
		args = append(args, "-initrd", r.initrd)
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("qemu -M %s -append %q: %v", r.machine, r.append, time.Since(start).Round(time.Millisecond))
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return out.String(), -1
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exitErr):
		return out.String(), exitErr.ExitCode()
	}
	t.Fatalf("run %s: %v", qemu, err)
	return "", 0
}

// checkLines fails unless want appear as lines of out, in order.
func checkLines(t *testing.T, out string, want []string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("serial output lacks %q (after the earlier lines); output:\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

func testInitrd(t *testing.T) (string, []byte) {
	t.Helper()
	b := make([]byte, 300000)
	x := uint32(1)
	for i := range b { // any fixed bytes will do: a linear congruential generator
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	path := filepath.Join(t.TempDir(), "initrd.bin")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestQEMUPVH(t *testing.T) {
	g := buildForTest(t)
	initrdPath, initrd := testInitrd(t)
	check := CheckArgs(qemuMem, initrd)
	fnvLine := fmt.Sprintf("initrd len=%d fnv=%08x", len(initrd), FNV1a(initrd))
	tests := []struct {
		name     string
		run      qemuRun
		wantCode int
		want     []string
		notWant  string
	}{
		{"check", qemuRun{append: check + " loops=12345", initrd: initrdPath}, QEMUExitCode(ExitOK),
			[]string{"testguest: boot=pvh mode=check", "e820 usable=", "cmdline=" + check + " loops=12345",
				fnvLine, "checks ok", fmt.Sprintf("ring3 ok sum=%08x", Checksum(12345))}, "EXCEPTION"},
		{"check on pc", qemuRun{machine: "pc", append: "mode=check", initrd: initrdPath}, QEMUExitCode(ExitOK),
			[]string{"testguest: boot=pvh mode=check", fnvLine, "checks ok", fmt.Sprintf("ring3 ok sum=%08x", Checksum(1000000))}, ""},
		{"no initrd", qemuRun{append: "expect_mem=134217728"}, QEMUExitCode(ExitOK),
			[]string{"initrd none", "checks ok", "ring3 ok"}, ""},
		{"wrong mem", qemuRun{append: "expect_mem=1000", initrd: initrdPath}, QEMUExitCode(ExitCheckFailed),
			[]string{"CHECK FAILED: expect_mem=1000 but e820 usable outside the legacy hole + 0x60400 = 134217728"}, "ring3"},
		{"wrong initrd", qemuRun{append: "expect_initrd=deadbeef", initrd: initrdPath}, QEMUExitCode(ExitCheckFailed),
			[]string{"CHECK FAILED: expect_initrd=deadbeef but initrd fnv="}, "ring3"},
		{"triple", qemuRun{append: "mode=triple"}, 0, // -no-reboot: QEMU exits 0
			[]string{"testguest: boot=pvh mode=triple"}, "e820"},
		{"int3", qemuRun{append: "mode=int3 loops=10"}, QEMUExitCode(ExitOK),
			[]string{"checks ok", "breakpoint ok", fmt.Sprintf("ring3 ok sum=%08x", Checksum(10))}, ""},
		{"pio", qemuRun{append: "mode=pio n=5000", iosize: 1}, QEMUExitCode(ExitOK),
			[]string{"pio done n=5000"}, ""},
		{"mmio", qemuRun{append: "mode=mmio n=5000"}, QEMUExitCode(ExitOK),
			[]string{"mmio done n=5000"}, ""},
		{"cpuid", qemuRun{append: "mode=cpuid"}, QEMUExitCode(ExitOK),
			[]string{"cpuid ring0 00000001.00 eax=", "cpuid ring3 00000001.00 eax=", "cpuid ring3 40000000.00 eax=", "cpuid done"}, "CHECK FAILED"},
		{"mxcsr", qemuRun{append: "mode=mxcsr"}, QEMUExitCode(ExitOK),
			[]string{"mxcsr reserved bit: ", "mxcsr ok"}, "CHECK FAILED"},
		{"bad mode", qemuRun{append: "mode=nosuch"}, QEMUExitCode(ExitCheckFailed),
			[]string{"CHECK FAILED: unknown mode="}, ""},
		{"spin", qemuRun{append: "mode=spin", timeout: 3 * time.Second}, -1, // killed by us
			[]string{"spin: ring 3 loops forever"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run
			r.kernel = g.ELF
			if r.machine == "" {
				r.machine = "microvm"
			}
			if r.iosize == 0 {
				r.iosize = 4
			}
			out, code := runQEMU(t, r)
			if code != tt.wantCode {
				t.Errorf("QEMU exit code = %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			checkLines(t, out, tt.want)
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Errorf("output contains %q:\n%s", tt.notWant, out)
			}
		})
	}
}

// TestQEMULinuxEntry boots each bzImage's protected-mode part at its 64-bit
// entry with a zero page, as govmm does, through the test-only shim.
func TestQEMULinuxEntry(t *testing.T) {
	g := buildForTest(t)
	_, initrd := testInitrd(t)
	for _, c := range []Compression{Gzip, Zstd} { // the payload lands in the bss
		t.Run(string(c), func(t *testing.T) {
			cmdline := CheckArgs(qemuMem, initrd) + " loops=777"
			shim := buildShim(t, readFile(t, g.BzImages[c]), cmdline, initrd)
			out, code := runQEMU(t, qemuRun{machine: "microvm", kernel: shim, append: "", iosize: 1})
			t.Logf("serial output:\n%s", out)
			if code != QEMUExitCode(ExitOK) {
				t.Errorf("QEMU exit code = %d, want %d; output:\n%s", code, QEMUExitCode(ExitOK), out)
			}
			checkLines(t, out, []string{"testguest: boot=linux mode=check",
				fmt.Sprintf("e820 usable=%d", qemuMem-LegacyHole), "cmdline=" + cmdline,
				fmt.Sprintf("initrd len=%d fnv=%08x", len(initrd), FNV1a(initrd)), "checks ok",
				"note: the MMIO debug-exit at 0xd0001000 returned", // QEMU has no MMIO alias
				fmt.Sprintf("ring3 ok sum=%08x", Checksum(777))})
		})
	}
}

// buildShim assembles testdata/linuxboot_shim.S around the bzImage's
// protected-mode part, a zero page with govmm's e820 map, and the initrd.
func buildShim(t *testing.T, bzImage []byte, cmdline string, initrd []byte) string {
	t.Helper()
	dir := t.TempDir()
	h := parseSetupHeader(t, bzImage)
	zp := make([]byte, 4096)
	le := binary.LittleEndian
	copy(zp[0x1f1:], bzImage[0x1f1:0x268]) // the setup header, as loaders do
	e820 := [][3]uint64{{0, 0x9fc00, 1}, {0x9fc00, LegacyHole, 2}, {0x100000, qemuMem - 0x100000, 1}}
	zp[0x1e8] = byte(len(e820))
	for i, e := range e820 {
		o := 0x2d0 + 20*i
		le.PutUint64(zp[o:], e[0])
		le.PutUint64(zp[o+8:], e[1])
		le.PutUint32(zp[o+16:], uint32(e[2]))
	}
	files := map[string][]byte{
		"zp.bin": zp, "cmdline.bin": append([]byte(cmdline), 0),
		"initrd.bin": initrd, "pm.bin": bzImage[h.ProtectedStart:],
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := run(dir, "gcc", "-c", filepath.Join(src, "linuxboot_shim.S"), "-o", "shim.o"); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, "ld", append(ldflags, "-T", filepath.Join(src, "linuxboot_shim.ld"), "-o", "shim.elf", "shim.o")...); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "shim.elf")
}
