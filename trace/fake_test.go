package trace

import (
	"context"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// step is one KVM_RUN of a scripted vCPU: the registers KVM would show at
// the exit, and the exit.
type step struct {
	rip, rdx uint64
	exit     kvm.Exit
}

// scriptHW plays back steps, then halts. Its CPU mode is fixed by sregs.
type scriptHW struct {
	steps []step
	regs  kvm.Regs
	sregs kvm.Sregs
}

func (f *scriptHW) Run() (kvm.Exit, error) {
	if len(f.steps) == 0 {
		return &kvm.HLTExit{}, nil
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	f.regs.RIP, f.regs.RDX = s.rip, s.rdx
	return s.exit, nil
}

func (f *scriptHW) SetImmediateExit(bool)               {}
func (f *scriptHW) GetRegs(r *kvm.Regs) error           { *r = f.regs; return nil }
func (f *scriptHW) SetRegs(r *kvm.Regs) error           { f.regs = *r; return nil }
func (f *scriptHW) GetSregs(s *kvm.Sregs) error         { *s = f.sregs; return nil }
func (f *scriptHW) GetVCPUEvents(*kvm.VCPUEvents) error { return nil }
func (f *scriptHW) SetVCPUEvents(*kvm.VCPUEvents) error { return nil }
func (f *scriptHW) GetXSAVE(*kvm.XSAVE) error           { return nil }
func (f *scriptHW) SetXSAVE(*kvm.XSAVE) error           { return nil }
func (f *scriptHW) SetGuestDebug(*kvm.GuestDebug) error { return nil }
func (f *scriptHW) SetSregs(s *kvm.Sregs) error         { f.sregs = *s; return nil }

// answer is a device that answers every read with one byte.
type answer byte

func (a answer) Read(_ uint64, p []byte) {
	for i := range p {
		p[i] = byte(a)
	}
}
func (answer) Write(uint64, []byte) {}

// Modes for scriptHW.sregs.
func realMode() kvm.Sregs { return kvm.Sregs{} }
func longMode() kvm.Sregs {
	var s kvm.Sregs
	s.CR0, s.EFER, s.CS.L = 1, 1<<10|1<<8, 1
	return s
}

// runScript runs steps on a vCPU with code at the given addresses, the
// serial port (answering 0x60) at 0x3f8 and an MMIO device at
// 0xd0000000, and observer o; it returns how the run ended.
func runScript(t *testing.T, sregs kvm.Sregs, code map[uint64][]byte, steps []step, o vcpu.Observer) (vcpu.StopReason, error) {
	t.Helper()
	ram := make([]byte, 2<<20)
	for addr, b := range code {
		copy(ram[addr:], b)
	}
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: ram})
	if err != nil {
		t.Fatal(err)
	}
	io, mmio := devices.NewBus(devices.PortIO), devices.NewBus(devices.MMIO)
	if err := io.Register(0x3f8, 8, "serial (COM1)", answer(0x60)); err != nil {
		t.Fatal(err)
	}
	if err := mmio.Register(0xd000_0000, 0x1000, "serial (MMIO alias)", answer(0x20)); err != nil {
		t.Fatal(err)
	}
	hw := &scriptHW{steps: steps, sregs: sregs}
	v := vcpu.New(vcpu.Config{HW: hw, IO: io, MMIO: mmio, Mem: mem})
	v.SetObserver(o)
	return v.Run(context.Background())
}
