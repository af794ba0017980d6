package debugger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// fakeCPU is a toy CPU in real mode whose instructions are one byte each
// at 0x1000 on: 0x90 (nop), 0xee (out dx, al: KVM_EXIT_IO to port DX, done
// at the exit as KVM's emulator does it, without a trap after it), 0xf4
// (hlt: it waits until kicked, like a halted vCPU). It honours
// KVM_SET_GUEST_DEBUG's single-step and DR0-DR3 instruction breakpoints,
// and counts the instructions it ran.
type fakeCPU struct {
	mu        sync.Mutex
	mem       []byte
	regs      kvm.Regs
	sregs     kvm.Sregs
	debug     kvm.GuestDebug
	immediate bool
	kick      chan struct{}
	ran       int
	io        kvm.IOExit
	data      [1]byte
}

func newFakeCPU(mem []byte, rip uint64) *fakeCPU {
	return &fakeCPU{mem: mem, regs: kvm.Regs{RIP: rip, RDX: 0x3f8, RFLAGS: 2}, kick: make(chan struct{}, 1)}
}

func (f *fakeCPU) Run() (kvm.Exit, error) {
	f.mu.Lock()
	if f.immediate {
		f.mu.Unlock()
		return &kvm.InterruptedExit{}, nil
	}
	for {
		rip := f.regs.RIP
		if f.debug.Control&kvm.GuestDebugUseHWBP != 0 {
			for i := range 4 {
				if f.debug.DebugReg[7]&(1<<(2*i)) != 0 && f.debug.DebugReg[i] == rip {
					f.mu.Unlock()
					return &kvm.DebugExit{Exception: 1, PC: rip, DR6: 0xffff0ff0 | 1<<i}, nil
				}
			}
		}
		op := f.mem[rip]
		switch op {
		case 0xcc: // int3: KVM's #BP exit, RIP still on it
			if f.debug.Control&kvm.GuestDebugUseSWBP != 0 {
				f.mu.Unlock()
				return &kvm.DebugExit{Exception: 3, PC: rip}, nil
			}
			panic("the fake CPU has no IDT for the guest's own int3")
		case 0xf4: // hlt: wait for a kick
			f.mu.Unlock()
			<-f.kick
			return &kvm.InterruptedExit{}, nil
		case 0xee:
			f.regs.RIP++
			f.ran++
			f.data[0] = byte(f.regs.RAX)
			f.io = kvm.IOExit{Port: uint16(f.regs.RDX), Out: true, Size: 1, Count: 1, Data: f.data[:]}
			f.mu.Unlock()
			return &f.io, nil
		default:
			f.regs.RIP++
			f.regs.RAX++
			f.ran++
		}
		if f.debug.Control&kvm.GuestDebugSingleStep != 0 {
			f.mu.Unlock()
			return &kvm.DebugExit{Exception: 1, PC: f.regs.RIP, DR6: 0xffff4ff0}, nil
		}
	}
}

func (f *fakeCPU) SetImmediateExit(on bool) {
	f.mu.Lock()
	f.immediate = on
	f.mu.Unlock()
	if on {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

func (f *fakeCPU) lock() func() { f.mu.Lock(); return f.mu.Unlock }

func (f *fakeCPU) GetRegs(r *kvm.Regs) error           { defer f.lock()(); *r = f.regs; return nil }
func (f *fakeCPU) SetRegs(r *kvm.Regs) error           { defer f.lock()(); f.regs = *r; return nil }
func (f *fakeCPU) GetSregs(s *kvm.Sregs) error         { defer f.lock()(); *s = f.sregs; return nil }
func (f *fakeCPU) GetVCPUEvents(*kvm.VCPUEvents) error { return nil }
func (f *fakeCPU) SetVCPUEvents(*kvm.VCPUEvents) error { return nil }
func (f *fakeCPU) GetXSAVE(*kvm.XSAVE) error           { return nil }
func (f *fakeCPU) SetXSAVE(*kvm.XSAVE) error           { return nil }
func (f *fakeCPU) SetGuestDebug(g *kvm.GuestDebug) error {
	defer f.lock()()
	f.debug = *g
	return nil
}

func (f *fakeCPU) rip() uint64 { defer f.lock()(); return f.regs.RIP }

// machine is a few fake vCPUs running one program each, under a debugger.
type machine struct {
	d    *Debugger
	cpus []*fakeCPU
	errs chan error
	stop func()
}

// nopDevice takes every write.
type nopDevice struct{}

func (nopDevice) Read(uint64, []byte)  {}
func (nopDevice) Write(uint64, []byte) {}

// startMachine runs programs (one per vCPU, at 0x1000 + 0x100*i) with a
// debugger that holds them before their first instruction.
func startMachine(t *testing.T, programs ...[]byte) *machine {
	t.Helper()
	return startMachineOn(t, true, programs...)
}

// startMachineOn is startMachine on a host that emulates the guest (PVM)
// or not (hardware virtualization), which decides the breakpoints' kind.
func startMachineOn(t *testing.T, emulated bool, programs ...[]byte) *machine {
	t.Helper()
	ram := make([]byte, 0x10000)
	for i, p := range programs {
		copy(ram[0x1000+0x100*i:], p)
	}
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: ram})
	if err != nil {
		t.Fatal(err)
	}
	io := devices.NewBus(devices.PortIO)
	if err := io.Register(0x3f8, 8, "serial (COM1)", nopDevice{}); err != nil {
		t.Fatal(err)
	}
	if err := io.Register(0xf4, 3, "debug-exit", nopDevice{}); err != nil {
		t.Fatal(err)
	}
	m := &machine{errs: make(chan error, len(programs))}
	var vs []*vcpu.VCPU
	for i := range programs {
		f := newFakeCPU(ram, uint64(0x1000+0x100*i))
		m.cpus = append(m.cpus, f)
		vs = append(vs, vcpu.New(vcpu.Config{ID: i, HW: f, IO: io, MMIO: devices.NewBus(devices.MMIO), Mem: mem}))
	}
	m.d = New(vs, emulated)
	for _, v := range vs {
		v.SetObserver(m.d)
	}
	m.d.StopAll()
	ctx, cancel := context.WithCancel(context.Background())
	for _, v := range vs {
		go func() {
			_, err := v.Run(ctx)
			m.errs <- err
		}()
	}
	m.stop = func() {
		cancel()
		for range vs {
			if err := <-m.errs; err != nil {
				t.Errorf("Run() = %v", err)
			}
		}
	}
	t.Cleanup(func() {
		m.stop()
		m.d.Close()
	})
	return m
}

// wait waits for the machine's next stop.
func (m *machine) wait(t *testing.T) Stop {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := m.d.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait() = %v", err)
	}
	return s
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
