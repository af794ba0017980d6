package debugger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

const (
	nop = 0x90
	out = 0xee
	hlt = 0xf4
)

func TestStartsHeld(t *testing.T) {
	m := startMachine(t, []byte{nop, hlt})
	s := m.wait(t)
	if s.Why != Interrupted || m.cpus[0].ran != 0 {
		t.Fatalf("first stop = %+v after %d instructions, want interrupted before the first", s, m.cpus[0].ran)
	}
}

// TestStepOneInstruction: every Step runs exactly one instruction, the
// OUT too, although the fake CPU (like KVM's emulator) finishes an OUT
// before its exit and does not trap after it; the step that ran the OUT
// lists its exit.
func TestStepOneInstruction(t *testing.T) {
	m := startMachine(t, []byte{nop, nop, out, nop, nop, hlt})
	m.wait(t)
	for want := 1; want <= 5; want++ {
		if err := m.d.Step(ctx10(t), 0); err != nil {
			t.Fatal(err)
		}
		s := m.wait(t)
		if s.Why != Stepped || m.cpus[0].ran != want || m.cpus[0].rip() != uint64(0x1000+want) {
			t.Fatalf("step %d: %+v, %d instructions run, rip %#x; want a step, %d instructions, rip %#x", want, s, m.cpus[0].ran, m.cpus[0].rip(), want, 0x1000+want)
		}
		if gotOut := len(s.During) == 1 && strings.Contains(s.During[0], "out port 0x3f8"); gotOut != (want == 3) {
			t.Errorf("step %d: exits during it = %q, want the OUT only in step 3", want, s.During)
		}
	}
}

// TestRunToExit: RunToExit stops at the OUT's exit before it is handled,
// naming the instruction behind it; a step from there handles it and runs
// nothing more; the next step runs the next instruction.
func TestRunToExit(t *testing.T) {
	m := startMachine(t, []byte{nop, nop, out, nop, hlt})
	m.wait(t)
	if err := m.d.RunToExit(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	s := m.wait(t)
	if s.Why != AtExit || s.Exit.Reason != kvm.ExitIO || s.Exit.Addr != 0x3f8 || !s.HaveCulprit || s.Culprit.RIP != 0x1002 || !s.Culprit.Done {
		t.Fatalf("RunToExit stop = %+v, want the exit at port 0x3f8 from the out at 0x1002, done", s)
	}
	if ran := m.cpus[0].ran; ran != 3 {
		t.Fatalf("instructions run at the exit = %d, want 3", ran)
	}
	for _, want := range []int{3, 4} {
		if err := m.d.Step(ctx10(t), 0); err != nil {
			t.Fatal(err)
		}
		if s := m.wait(t); s.Why != Stepped || m.cpus[0].ran != want {
			t.Fatalf("step from the exit: %+v with %d instructions run, want a step with %d", s, m.cpus[0].ran, want)
		}
	}
}

// TestBreakpoints: a debug-register breakpoint stops the vCPU before the
// instruction; Continue steps off it and runs on without stopping there
// again; RemoveBreakpoint takes it away.
func TestBreakpoints(t *testing.T) {
	m := startMachine(t, []byte{nop, nop, nop, nop, nop, hlt})
	m.wait(t)
	b, err := m.d.AddBreakpoint(ctx10(t), 0x1003, false)
	if err != nil || !b.Hard {
		t.Fatalf("AddBreakpoint() = %+v, %v, want a debug register", b, err)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	s := m.wait(t)
	if s.Why != AtBreakpoint || s.Addr != 0x1003 || m.cpus[0].ran != 3 {
		t.Fatalf("stop = %+v after %d instructions, want the breakpoint at 0x1003 after 3", s, m.cpus[0].ran)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	m.d.StopAll() // the vCPU waits in its hlt
	if s := m.wait(t); s.Why != Interrupted || m.cpus[0].rip() != 0x1005 || m.cpus[0].ran != 5 {
		t.Fatalf("stop = %+v at rip %#x after %d instructions, want interrupted at the hlt (0x1005) after 5", s, m.cpus[0].rip(), m.cpus[0].ran)
	}
	if err := m.d.RemoveBreakpoint(ctx10(t), 0x1003); err != nil || len(m.d.Breakpoints()) != 0 {
		t.Errorf("RemoveBreakpoint() = %v, leaving %v", err, m.d.Breakpoints())
	}
}

// TestSoftBreakpoints: with the four debug registers taken, a breakpoint
// is an int3 in memory, which reads show as the original byte; removing
// it puts the byte back.
func TestSoftBreakpoints(t *testing.T) {
	m := startMachine(t, []byte{nop, nop, nop, nop, nop, nop, hlt})
	m.wait(t)
	for a := uint64(0x2000); a < 0x2004; a++ {
		if _, err := m.d.AddBreakpoint(ctx10(t), a, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.d.AddBreakpoint(ctx10(t), 0x1001, true); !errors.Is(err, ErrNoSlot) {
		t.Errorf("AddBreakpoint(hardOnly) with the registers taken = %v, want ErrNoSlot", err)
	}
	b, err := m.d.AddBreakpoint(ctx10(t), 0x1001, false)
	if err != nil || b.Hard {
		t.Fatalf("AddBreakpoint() = %+v, %v, want an int3", b, err)
	}
	if got := m.cpus[0].mem[0x1001]; got != 0xcc {
		t.Errorf("memory under the int3 = %#x, want 0xcc", got)
	}
	buf := make([]byte, 3)
	if _, err := m.d.ReadMemory(ctx10(t), 0, 0x1000, buf); err != nil || buf[1] != nop {
		t.Errorf("ReadMemory() = % x, %v, want the nop under the int3", buf, err)
	}
	if err := m.d.RemoveBreakpoint(ctx10(t), 0x1001); err != nil || m.cpus[0].mem[0x1001] != nop {
		t.Errorf("RemoveBreakpoint() = %v, memory %#x, want the nop back", err, m.cpus[0].mem[0x1001])
	}
}

// TestAllStop: one vCPU's breakpoint stops the other too, both are held
// (Do reaches each), and Continue lets both go on.
func TestAllStop(t *testing.T) {
	m := startMachine(t, []byte{nop, nop, nop, hlt}, []byte{nop, nop, nop, nop, nop, hlt})
	m.wait(t)
	if _, err := m.d.AddBreakpoint(ctx10(t), 0x1104, false); err != nil {
		t.Fatal(err)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	s := m.wait(t)
	if s.Why != AtBreakpoint || s.VCPU != 1 {
		t.Fatalf("stop = %+v, want vCPU 1's breakpoint", s)
	}
	for id := range 2 {
		if err := m.d.Do(ctx10(t), id, func(h *vcpu.Handle) error { _, err := h.Regs(); return err }); err != nil {
			t.Errorf("Do(vCPU %d) while stopped = %v", id, err)
		}
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	m.d.StopAll()
	if s := m.wait(t); s.Why != Interrupted || m.cpus[1].rip() != 0x1105 {
		t.Errorf("stop = %+v with vCPU 1 at %#x, want interrupted at its hlt (0x1105)", s, m.cpus[1].rip())
	}
}

// TestExitBreaks: a break on a port stops at its exit, and the guest's
// write to the debug-exit device stops the machine when asked to.
func TestExitBreaks(t *testing.T) {
	m := startMachine(t, []byte{nop, out, nop, out, hlt})
	m.d.StopAtGuestExit = true
	m.wait(t)
	i := m.d.AddExitBreak(ExitBreak{HasRange: true, Space: devices.PortIO, Lo: 0x3f8, Hi: 0x3ff})
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if s := m.wait(t); s.Why != AtExit || s.Break != i || s.Culprit.RIP != 0x1001 {
		t.Fatalf("stop = %+v, want exit break %d at the out at 0x1001", s, i)
	}
	// Point the second OUT at the debug-exit device.
	if err := m.d.Do(ctx10(t), 0, func(h *vcpu.Handle) error {
		r, err := h.Regs()
		if err != nil {
			return err
		}
		c := *r
		c.RDX = 0xf4
		return h.SetRegs(&c)
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if s := m.wait(t); s.Why != GuestExit || s.Exit.Device != "debug-exit" {
		t.Fatalf("stop = %+v, want the guest's exit", s)
	}
	if got := m.d.ExitBreaks(); len(got) != 1 || got[0].String() != "any exit at port 0x3f8-0x3ff" {
		t.Errorf("ExitBreaks() = %v", got)
	}
}

// TestWaitEnded: once the vCPUs have returned from Run, Wait says so.
func TestWaitEnded(t *testing.T) {
	m := startMachine(t, []byte{hlt})
	m.wait(t)
	m.stop()
	m.stop = func() {}
	if _, err := m.d.Wait(context.Background()); !errors.Is(err, ErrEnded) {
		t.Errorf("Wait() after the run = %v, want ErrEnded", err)
	}
}

// TestSoftBreakpointsWithHardware: with hardware virtualization a
// breakpoint is an int3 (KVM reports it as a #BP); Continue and Step from
// it run the instruction it covers, once, and put the int3 back.
func TestSoftBreakpointsWithHardware(t *testing.T) {
	m := startMachineOn(t, false, []byte{nop, nop, nop, nop, nop, hlt})
	m.wait(t)
	b, err := m.d.AddBreakpoint(ctx10(t), 0x1001, false)
	if err != nil || b.Hard {
		t.Fatalf("AddBreakpoint() = %+v, %v, want an int3", b, err)
	}
	if _, err := m.d.AddBreakpoint(ctx10(t), 0x1003, false); err != nil {
		t.Fatal(err)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if s := m.wait(t); s.Why != AtBreakpoint || s.Addr != 0x1001 || m.cpus[0].ran != 1 {
		t.Fatalf("stop = %+v after %d instructions, want the int3 at 0x1001 after 1", s, m.cpus[0].ran)
	}
	if err := m.d.Step(ctx10(t), 0); err != nil {
		t.Fatal(err)
	}
	if s := m.wait(t); s.Why != Stepped || m.cpus[0].rip() != 0x1002 || m.cpus[0].ran != 2 || m.cpus[0].mem[0x1001] != 0xcc {
		t.Fatalf("step off the int3: %+v at %#x after %d, memory %#x; want a step to 0x1002 after 2, the int3 back", s, m.cpus[0].rip(), m.cpus[0].ran, m.cpus[0].mem[0x1001])
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if s := m.wait(t); s.Why != AtBreakpoint || s.Addr != 0x1003 || m.cpus[0].ran != 3 {
		t.Fatalf("stop = %+v after %d, want the int3 at 0x1003 after 3", s, m.cpus[0].ran)
	}
	if err := m.d.Continue(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	m.d.StopAll()
	if s := m.wait(t); s.Why != Interrupted || m.cpus[0].ran != 5 || m.cpus[0].mem[0x1003] != 0xcc {
		t.Fatalf("stop = %+v after %d, memory %#x; want interrupted at the hlt after 5, the int3 back", s, m.cpus[0].ran, m.cpus[0].mem[0x1003])
	}
}
