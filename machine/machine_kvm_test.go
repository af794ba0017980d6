package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// syncBuffer is a bytes.Buffer safe for the vCPU thread to write while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// boot runs one test guest to its end with a time limit.
func bootGuest(t *testing.T, image, initrd []byte, cmdline string, mem uint64, path BootPath) (Result, string, string, error) {
	t.Helper()
	var serial, log syncBuffer
	m, err := New(Config{
		KVMPath: kvmtest.Path(), Kernel: image, Initrd: initrd, Cmdline: cmdline,
		MemSize: mem, CPUs: 1, Boot: path, CacheDir: t.TempDir(),
		SerialOut: &serial, Log: &log, Verbose: true,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := m.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("guest did not finish in 60 s; serial so far:\n%s", serial.String())
	}
	return res, serial.String(), log.String(), err
}

// TestTestGuestBoots boots the test guest through every image and path and
// checks what it reports about the zero page, its ring-3 work and its exit.
func TestTestGuestBoots(t *testing.T) {
	kvmtest.Require(t)
	g := guests(t)
	initrd := bytes.Repeat([]byte("govmm initrd "), 4096)
	const mem = 128 << 20
	cmdline := "console=ttyS0 mode=check loops=200000 " + testguest.CheckArgs(mem, initrd)
	tests := []struct {
		name  string
		image string
		path  BootPath
	}{
		{"elf", g.ELF, BootAuto},
		{"bzImage as is", g.BzImage, BootBzImage},
		{"bzImage gzip fast", g.BzImages[testguest.Gzip], BootFast},
		{"bzImage lz4 fast", g.BzImages[testguest.LZ4], BootFast},
		{"bzImage xz fast", g.BzImages[testguest.XZ], BootFast},
		{"bzImage zstd fast", g.BzImages[testguest.Zstd], BootFast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, serial, log, err := bootGuest(t, readFile(t, tt.image), initrd, cmdline, mem, tt.path)
			if err != nil {
				t.Fatalf("Run() = %v\nserial:\n%s\nlog:\n%s", err, serial, log)
			}
			if res.Reason != vcpu.StopPowerOff || res.Status != testguest.ExitOK || !res.DebugExit {
				t.Errorf("Run() = %+v, want power off with status 0 through the debug-exit device\nserial:\n%s", res, serial)
			}
			for _, want := range []string{
				"cmdline=" + cmdline + "\n",
				fmt.Sprintf("initrd len=%d fnv=%08x", len(initrd), testguest.FNV1a(initrd)),
				"checks ok",
				fmt.Sprintf("ring3 ok sum=%08x", testguest.Checksum(200000)),
			} {
				if !strings.Contains(serial, want) {
					t.Errorf("serial output lacks %q:\n%s", want, serial)
				}
			}
			if !strings.Contains(log, "boot-timer: mark 1 ") {
				t.Errorf("VMM log has no boot-timer mark:\n%s", log)
			}
		})
	}
}

// TestGuestStatusAndFaults covers the ways a guest ends other than success.
func TestGuestStatusAndFaults(t *testing.T) {
	host := kvmtest.Require(t)
	g := guests(t)
	elf := readFile(t, g.ELF)
	t.Run("failed check gives its status", func(t *testing.T) {
		res, serial, _, err := bootGuest(t, elf, nil, "mode=check expect_mem=1234", 64<<20, BootAuto)
		if err != nil || res.Status != testguest.ExitCheckFailed {
			t.Errorf("Run() = %+v, %v, want status %d\nserial:\n%s", res, err, testguest.ExitCheckFailed, serial)
		}
	})
	t.Run("with two vCPUs the boot vCPU runs the guest", func(t *testing.T) {
		var serial syncBuffer
		m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: "mode=check loops=1000", MemSize: 64 << 20, CPUs: 2, SerialOut: &serial})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := m.Run(ctx)
		if err != nil || res.Status != 0 || !strings.Contains(serial.String(), "ring3 ok") {
			t.Errorf("Run() with 2 vCPUs = %+v, %v, want status 0 and ring3 ok\nserial:\n%s", res, err, serial.String())
		}
	})
	t.Run("triple fault is reported with registers", func(t *testing.T) {
		_, serial, _, err := bootGuest(t, elf, nil, "mode=triple", 64<<20, BootAuto)
		var ge *vcpu.GuestError
		if !errors.As(err, &ge) {
			t.Fatalf("Run() = %v, want a GuestError\nserial:\n%s", err, serial)
		}
		if !strings.Contains(ge.Error(), "triple fault") || ge.Regs.RIP == 0 || !strings.Contains(ge.Registers(), "cr3=") {
			t.Errorf("report = %q, want a triple fault with registers", ge.Registers())
		}
	})
	t.Run("int3 reaches the guest's handler", func(t *testing.T) {
		res, serial, log, err := bootGuest(t, elf, nil, "mode=int3 loops=1000", 64<<20, BootAuto)
		if err != nil || res.Status != 0 || !strings.Contains(serial, "breakpoint ok") {
			t.Errorf("Run() = %+v, %v, want status 0 and \"breakpoint ok\"\nserial:\n%s\nlog:\n%s", res, err, serial, log)
		}
		if host == kvm.HostPVM && !strings.Contains(log, "int3=1") {
			t.Errorf("on a PVM host the int3 fixup should be counted; log:\n%s", log)
		}
	})
	t.Run("a spinning guest stops when asked", func(t *testing.T) {
		var serial syncBuffer
		m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: "mode=spin", MemSize: 64 << 20, CPUs: 1, SerialOut: &serial})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(2*time.Second, cancel)
		res, err := m.Run(ctx)
		if err != nil || res.Reason != vcpu.StopCanceled {
			t.Errorf("Run() = %+v, %v, want stopped by the VMM\nserial:\n%s", res, err, serial.String())
		}
		if !strings.Contains(serial.String(), "spin") {
			t.Errorf("guest never reached its spin loop:\n%s", serial.String())
		}
	})
	t.Run("a paused guest's state survives save and restore", func(t *testing.T) {
		var serial syncBuffer
		m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: "mode=spin", MemSize: 64 << 20, CPUs: 1, SerialOut: &serial})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := m.Run(ctx)
			done <- err
		}()
		v := m.VCPUs()[0]
		for v.RunState() != vcpu.Running {
			time.Sleep(time.Millisecond) // bounded by ctx below
			if ctx.Err() != nil {
				t.Fatal("vCPU never started")
			}
		}
		time.Sleep(200 * time.Millisecond) // let the guest reach ring 3
		if err := v.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		saved, err := v.SaveState()
		if err != nil {
			t.Fatal(err)
		}
		if saved.Sregs.CS.Selector != 0x33 {
			t.Errorf("paused in CS %#x, want the guest's ring-3 spin loop (0x33)", saved.Sregs.CS.Selector)
		}
		if err := v.RestoreState(saved); err != nil {
			t.Fatal(err)
		}
		again, err := v.SaveState()
		if err != nil {
			t.Fatal(err)
		}
		if again.Regs != saved.Regs || again.Sregs.CR3 != saved.Sregs.CR3 || len(again.MSRs) != len(saved.MSRs) {
			t.Errorf("state after restore differs: rip %#x vs %#x", again.Regs.RIP, saved.Regs.RIP)
		}
		if err := v.Resume(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() after resume and stop = %v\nserial:\n%s", err, serial.String())
		}
	})
}

// TestNewTruncatedInitrd: an initrd mapped from its file (as govmm maps
// it) and truncated before New copies it is New's error, not a crash.
func TestNewTruncatedInitrd(t *testing.T) {
	kvmtest.Require(t)
	g := guests(t)
	path := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(path, bytes.Repeat([]byte("govmm initrd "), 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	initrd, unmap, err := boot.MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, g.ELF), Initrd: initrd, Cmdline: "mode=check",
		MemSize: 64 << 20, CPUs: 1, SerialOut: io.Discard})
	if err == nil {
		m.Close()
		t.Fatal("New with an initrd truncated under its mapping succeeded")
	}
	if !strings.Contains(err.Error(), "loading the kernel: a file changed while govmm read it") {
		t.Errorf("New = %v, want the changed file named as the reason", err)
	}
}
