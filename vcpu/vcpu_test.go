package vcpu

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

func ioOut(port uint16, data string) func() kvm.Exit {
	return func() kvm.Exit {
		return &kvm.IOExit{Port: port, Out: true, Size: 1, Count: uint32(len(data)), Data: []byte(data)}
	}
}

func exitOf(e kvm.Exit) func() kvm.Exit { return func() kvm.Exit { return e } }

// newTestVCPU wires a vCPU to a fake with a recorder at port 0x3f8 and at
// MMIO 0xd0000000, and 64 KiB of RAM.
func newTestVCPU(t *testing.T, hw *fakeHW) (*VCPU, *recorder, []byte) {
	t.Helper()
	dev := &recorder{answer: 0x5a}
	io, mmio := devices.NewBus(devices.PortIO), devices.NewBus(devices.MMIO)
	if err := io.Register(0x3f8, 8, "rec", dev); err != nil {
		t.Fatal(err)
	}
	if err := mmio.Register(0xd000_0000, 0x1000, "rec", dev); err != nil {
		t.Fatal(err)
	}
	ram := make([]byte, 64<<10)
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: ram})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{ID: 0, HW: hw, IO: io, MMIO: mmio, Mem: mem}), dev, ram
}

func TestRunDispatchesAndStops(t *testing.T) {
	in := &kvm.IOExit{Port: 0x3f9, Out: false, Size: 1, Count: 1, Data: []byte{0}}
	mmioRead := &kvm.MMIOExit{Addr: 0xd000_0004, Write: false, Data: make([]byte, 4)}
	tests := []struct {
		name       string
		script     []func() kvm.Exit
		wantReason StopReason
		wantWrites []string
	}{
		{"string out then power off", []func() kvm.Exit{ioOut(0x3f8, "hi"), exitOf(&kvm.SystemEventExit{Type: kvm.SystemEventShutdown})}, StopPowerOff, []string{"h", "i"}},
		{"mmio write then reset", []func() kvm.Exit{exitOf(&kvm.MMIOExit{Addr: 0xd000_0000, Write: true, Data: []byte("ok")}), exitOf(&kvm.SystemEventExit{Type: kvm.SystemEventReset})}, StopReset, []string{"ok"}},
		{"reads then halt", []func() kvm.Exit{exitOf(in), exitOf(mmioRead), exitOf(&kvm.HLTExit{})}, StopHalt, nil},
		{"unclaimed port is not fatal", []func() kvm.Exit{ioOut(0x1234, "x"), exitOf(&kvm.HLTExit{})}, StopHalt, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, dev, _ := newTestVCPU(t, newFakeHW(tt.script...))
			got, err := v.Run(context.Background())
			if err != nil || got != tt.wantReason {
				t.Fatalf("Run() = %v, %v, want %v, nil", got, err, tt.wantReason)
			}
			if strings.Join(dev.writes, ",") != strings.Join(tt.wantWrites, ",") {
				t.Errorf("device writes = %q, want %q", dev.writes, tt.wantWrites)
			}
			if v.RunState() != Stopped {
				t.Errorf("RunState() after Run = %v, want %v", v.RunState(), Stopped)
			}
		})
	}
	if in.Data[0] != 0x5a || string(mmioRead.Data) != "\x5a\x5a\x5a\x5a" {
		t.Errorf("reads filled port data %x and mmio data %x, want 5a from the device", in.Data, mmioRead.Data)
	}
}

func TestTripleFaultReport(t *testing.T) {
	hw := newFakeHW(exitOf(&kvm.ShutdownExit{}))
	v, _, ram := newTestVCPU(t, hw)
	// Real mode, CS base 0x1000, IP 0x10: the ud2 that faulted sits at 0x1010.
	hw.sregs.CS.Base = 0x1000
	hw.regs.RIP = 0x10
	hw.regs.RAX = 0xdead
	copy(ram[0x1010:], []byte{0x0f, 0x0b})
	_, err := v.Run(context.Background())
	var ge *GuestError
	if !errors.As(err, &ge) {
		t.Fatalf("Run() error = %v, want a *GuestError", err)
	}
	line := ge.Error()
	for _, want := range []string{"triple fault", "rip=0x10", "0f 0b", "ud2"} {
		if !strings.Contains(line, want) {
			t.Errorf("report %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("Error() = %q, want one line", line)
	}
	if d := ge.Registers(); !strings.Contains(d, "rax=000000000000dead") {
		t.Errorf("Registers() lacks the registers:\n%s", d)
	}
}

func emulationFailure(insn ...byte) *kvm.InternalErrorExit {
	var raw [16]byte
	raw[0] = byte(len(insn))
	copy(raw[1:], insn)
	word := func(b []byte) uint64 {
		var w uint64
		for i := 7; i >= 0; i-- {
			w = w<<8 | uint64(b[i])
		}
		return w
	}
	return &kvm.InternalErrorExit{Suberror: kvm.InternalErrorEmulation, Data: []uint64{1, word(raw[:8]), word(raw[8:])}}
}

func TestPVMFixups(t *testing.T) {
	t.Run("int3 delivers #BP after the instruction", func(t *testing.T) {
		hw := newFakeHW(exitOf(emulationFailure(0xcc)), exitOf(&kvm.HLTExit{}))
		hw.regs.RIP = 0x100
		v, _, _ := newTestVCPU(t, hw)
		if got, err := v.Run(context.Background()); err != nil || got != StopHalt {
			t.Fatalf("Run() = %v, %v, want halt after the fixup", got, err)
		}
		if hw.regs.RIP != 0x101 || hw.events.Exception.Injected != 1 || hw.events.Exception.Nr != 3 {
			t.Errorf("after int3: rip=%#x injected=%d vector=%d, want rip=0x101 injected=1 vector=3", hw.regs.RIP, hw.events.Exception.Injected, hw.events.Exception.Nr)
		}
		if n := v.Fixups.Int3.Load(); n != 1 {
			t.Errorf("Fixups.Int3 = %d, want 1", n)
		}
	})
	t.Run("fwait read from memory is stepped over", func(t *testing.T) {
		// No instruction bytes in the exit: the VMM reads them at RIP.
		hw := newFakeHW(exitOf(&kvm.InternalErrorExit{Suberror: kvm.InternalErrorEmulation}), exitOf(&kvm.HLTExit{}))
		v, _, ram := newTestVCPU(t, hw)
		hw.regs.RIP = 0x200
		ram[0x200] = 0x9b
		if got, err := v.Run(context.Background()); err != nil || got != StopHalt {
			t.Fatalf("Run() = %v, %v, want halt after the fixup", got, err)
		}
		if hw.regs.RIP != 0x201 || v.Fixups.Fwait.Load() != 1 {
			t.Errorf("after fwait: rip=%#x fwait fixups=%d, want 0x201 and 1", hw.regs.RIP, v.Fixups.Fwait.Load())
		}
	})
	t.Run("unknown instruction stops with its disassembly", func(t *testing.T) {
		hw := newFakeHW(exitOf(emulationFailure(0xf3, 0x0f, 0xb8, 0xc1))) // popcnt eax, ecx
		hw.sregs.CR0 = 1
		hw.sregs.CS.DB = 1
		v, _, _ := newTestVCPU(t, hw)
		_, err := v.Run(context.Background())
		var ge *GuestError
		if !errors.As(err, &ge) || !strings.Contains(ge.Error(), "popcnt") || !strings.Contains(ge.Error(), "emulate") {
			t.Errorf("Run() error = %v, want a report naming popcnt", err)
		}
	})
}

type countingObserver struct{ n atomic.Int64 }

func (c *countingObserver) Exit(*Event) Action { c.n.Add(1); return Continue }
func (c *countingObserver) Handled(*Event)     {}

func TestObserverSeesEveryExit(t *testing.T) {
	hw := newFakeHW(ioOut(0x3f8, "a"), ioOut(0x3f8, "b"), exitOf(&kvm.HLTExit{}))
	v, _, _ := newTestVCPU(t, hw)
	obs := &countingObserver{}
	v.SetObserver(obs)
	if _, err := v.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := obs.n.Load(); got != 3 {
		t.Errorf("observer saw %d exits, want 3", got)
	}
}

func TestStopPauseResumeFromOutside(t *testing.T) {
	hw := newFakeHW() // spins until kicked
	v, _, _ := newTestVCPU(t, hw)
	done := startRun(t, v, hw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Pause(ctx); err != nil {
		t.Fatalf("Pause() = %v", err)
	}
	if s := v.RunState(); s != Paused {
		t.Fatalf("RunState() after Pause = %v, want paused", s)
	}
	if err := v.Resume(); err != nil {
		t.Fatalf("Resume() = %v", err)
	}
	if s := v.RunState(); s != Running {
		t.Fatalf("RunState() after Resume = %v, want running", s)
	}
	stopRun(t, v, done)
}

func TestContextCancelStopsPausedVCPU(t *testing.T) {
	hw := newFakeHW()
	v, _, _ := newTestVCPU(t, hw)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Run(ctx)
		done <- err
	}()
	hw.waitEntered(t, "Run never reached the guest")
	if err := v.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a paused vCPU did not stop when its context was canceled")
	}
	if s := v.RunState(); s != Stopped {
		t.Errorf("RunState() after cancel = %v, want %v", s, Stopped)
	}
}

// TestStopReasonZeroValue: a failed run must never read as a power off.
// Before StopUnknown existed, StopPowerOff was 0 and every error path
// returned it.
func TestStopReasonZeroValue(t *testing.T) {
	var zero StopReason
	if zero != StopUnknown || zero == StopPowerOff || zero.String() != "unknown" {
		t.Errorf("StopReason zero value = %v (%d), want %v, distinct from %v", zero, int(zero), StopUnknown, StopPowerOff)
	}
	tests := []struct {
		name   string
		script []func() kvm.Exit
	}{
		{"triple fault", []func() kvm.Exit{exitOf(&kvm.ShutdownExit{})}},
		{"unhandled exit", []func() kvm.Exit{exitOf(&kvm.UnknownExit{Reason: kvm.ExitHypercall})}},
		{"crash system event", []func() kvm.Exit{exitOf(&kvm.SystemEventExit{Type: kvm.SystemEventCrash})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, _ := newTestVCPU(t, newFakeHW(tt.script...))
			got, err := v.Run(context.Background())
			if err == nil || got != StopUnknown {
				t.Errorf("Run() = %v, %v, want %v and an error", got, err, StopUnknown)
			}
		})
	}
	t.Run("Run twice", func(t *testing.T) {
		v, _, _ := newTestVCPU(t, newFakeHW(exitOf(&kvm.HLTExit{})))
		if _, err := v.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, err := v.Run(context.Background()); err == nil || got != StopUnknown {
			t.Errorf("second Run() = %v, %v, want %v and an error", got, err, StopUnknown)
		}
	})
}
