package gdbstub

import (
	"context"
	"errors"
	"fmt"

	"github.com/govmm/govmm/debugger"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Machine is the Target of a govmm VM: its vCPUs under a debugger.
type Machine struct {
	d     *debugger.Debugger
	kill  func()
	ended chan StopEvent
}

// NewMachine debugs the vCPUs d holds; kill ends the VM. Call End when
// the VM has ended, so that gdb hears how.
func NewMachine(d *debugger.Debugger, kill func()) *Machine {
	return &Machine{d: d, kill: kill, ended: make(chan StopEvent, 1)}
}

// End tells the stub how the VM ended: the guest's status, or, with
// killed, the signal gdb is told it died of (a guest that failed).
func (m *Machine) End(status int, killed bool, signal int) {
	select {
	case m.ended <- StopEvent{Exited: true, Status: status, Killed: killed, Signal: signal}:
	default:
	}
}

// Threads is the number of vCPUs.
func (m *Machine) Threads() int { return m.d.VCPUs() }

// Interrupt stops every vCPU.
func (m *Machine) Interrupt() { m.d.StopAll() }

// Wait waits for the next stop, or for End once the vCPUs have stopped
// for good.
func (m *Machine) Wait(ctx context.Context) (StopEvent, error) {
	st, err := m.d.Wait(ctx)
	if errors.Is(err, debugger.ErrEnded) {
		select {
		case e := <-m.ended:
			return e, nil
		case <-ctx.Done():
			return StopEvent{}, ctx.Err()
		}
	}
	if err != nil {
		return StopEvent{}, err
	}
	ev := StopEvent{Thread: st.VCPU, Signal: SIGTRAP}
	switch st.Why {
	case debugger.Interrupted:
		ev.Signal = SIGINT
	case debugger.AtBreakpoint:
		ev.SWBreak, ev.HWBreak = true, false
		for _, b := range m.d.Breakpoints() {
			if b.Addr == st.Addr && b.Hard {
				ev.SWBreak, ev.HWBreak = false, true
			}
		}
	}
	return ev, nil
}

// Continue runs every vCPU.
func (m *Machine) Continue(ctx context.Context) error { return m.d.Continue(ctx) }

// Step runs one instruction on vCPU id.
func (m *Machine) Step(ctx context.Context, id int) error { return m.d.Step(ctx, id) }

// ReadRegs reads vCPU id's registers, segment bases, control registers
// and x87/SSE state.
func (m *Machine) ReadRegs(ctx context.Context, id int) (Regs, error) {
	var out Regs
	err := m.d.Do(ctx, id, func(h *vcpu.Handle) error {
		r, err := h.Regs()
		if err != nil {
			return err
		}
		s, err := h.Sregs()
		if err != nil {
			return err
		}
		fpu, err := h.FPU()
		if err != nil {
			return err
		}
		fill(&out, r, s, &fpu)
		return nil
	})
	return out, err
}

// fill converts KVM's register structs to gdb's set.
func fill(out *Regs, r *kvm.Regs, s *kvm.Sregs, f *kvm.FPU) {
	out.GPR = [16]uint64{r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP, r.RSP,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15}
	out.RIP, out.EFLAGS = r.RIP, uint32(r.RFLAGS)
	out.Seg = [6]uint32{uint32(s.CS.Selector), uint32(s.SS.Selector), uint32(s.DS.Selector),
		uint32(s.ES.Selector), uint32(s.FS.Selector), uint32(s.GS.Selector)}
	for i := range 8 {
		copy(out.ST[i][:], f.FPR[i][:10])
	}
	// KVM keeps FXSAVE's abridged tag byte (a bit per register: in use or
	// not); gdb wants the full tag word, two bits per register, 3 empty.
	var tag uint32
	for i := range 8 {
		if f.FTWX&(1<<i) == 0 {
			tag |= 3 << (2 * i)
		}
	}
	out.FPU = [8]uint32{uint32(f.FCW), uint32(f.FSW), tag, 0, uint32(f.LastIP), 0, uint32(f.LastDP), uint32(f.LastOpcode)}
	out.XMM = f.XMM
	out.MXCSR = f.MXCSR
	out.FSBase, out.GSBase = s.FS.Base, s.GS.Base
	out.CR = [6]uint64{s.CR0, s.CR2, s.CR3, s.CR4, s.CR8, s.EFER}
}

// WriteRegs writes the general-purpose registers, RIP and RFLAGS.
func (m *Machine) WriteRegs(ctx context.Context, id int, in Regs) error {
	return m.d.Do(ctx, id, func(h *vcpu.Handle) error {
		r, err := h.Regs()
		if err != nil {
			return err
		}
		n := *r
		g := in.GPR
		n.RAX, n.RBX, n.RCX, n.RDX, n.RSI, n.RDI, n.RBP, n.RSP = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
		n.R8, n.R9, n.R10, n.R11, n.R12, n.R13, n.R14, n.R15 = g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
		n.RIP = in.RIP
		n.RFLAGS = n.RFLAGS&^0xffffffff | uint64(in.EFLAGS)
		return h.SetRegs(&n)
	})
}

// ReadMemory reads at a linear address as vCPU id translates it.
func (m *Machine) ReadMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error) {
	return m.d.ReadMemory(ctx, id, addr, p)
}

// WriteMemory writes at a linear address as vCPU id translates it.
func (m *Machine) WriteMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error) {
	return m.d.WriteMemory(ctx, id, addr, p)
}

// AddBreakpoint sets a breakpoint: Z1 (hard) takes a debug register; Z0
// is an int3 with hardware virtualization, and on PVM hosts a debug
// register while one is free (see debugger.AddBreakpoint).
func (m *Machine) AddBreakpoint(ctx context.Context, addr uint64, hard bool) error {
	_, err := m.d.AddBreakpoint(ctx, addr, hard)
	return err
}

// RemoveBreakpoint clears it.
func (m *Machine) RemoveBreakpoint(ctx context.Context, addr uint64, _ bool) error {
	return m.d.RemoveBreakpoint(ctx, addr)
}

// ThreadInfo names vCPU id.
func (m *Machine) ThreadInfo(id int) string { return fmt.Sprintf("vCPU %d", id) }

// Kill ends the VM.
func (m *Machine) Kill() { m.kill() }

// Detach clears the breakpoints and lets the machine run on. It may be
// called while the machine runs.
func (m *Machine) Detach(ctx context.Context) error {
	err := m.d.ClearBreaks(ctx)
	return errors.Join(err, m.d.Continue(ctx))
}
