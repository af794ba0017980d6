// Package debugger holds the vCPUs of a running machine for a front end:
// the stepper (govmm step) and the gdb stub. It is a vcpu.Observer on
// every vCPU and offers what both need:
//
//   - all-stop: when one vCPU stops (a step, a breakpoint, an exit the user
//     asked to stop at, an interrupt), every other vCPU is stopped too
//     before the front end hears of it, and they go on together;
//   - single-step of one vCPU while the others stay stopped, one guest
//     instruction per step on every host (see Step for how an OUT that
//     KVM's emulator finished before its exit is counted);
//   - breakpoints on guest addresses (the debug registers, then int3),
//     on exit reasons, on ports and on MMIO ranges;
//   - registers and memory of stopped vCPUs.
//
// The vCPUs' side of it is vcpu's Debug state: an observer that answers
// Stop holds the vCPU between two KVM_RUNs, where Do reaches it, until
// Release.
package debugger

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/trace"
	"github.com/govmm/govmm/vcpu"
)

// Why says why the machine stopped.
type Why int

// Reasons for a stop. The zero value is not one.
const (
	_ Why = iota
	// Interrupted: the front end asked (StopAll): at the start, on Ctrl-C.
	Interrupted
	// Stepped: Step ran its one instruction.
	Stepped
	// AtBreakpoint: the vCPU reached an address breakpoint (Stop.Addr).
	AtBreakpoint
	// AtExit: the vCPU made a user-space exit that a break on exits
	// matched, or the first one after RunToExit. It has not been handled.
	AtExit
	// GuestExit: the guest wrote its exit status to the debug-exit
	// device (with StopAtGuestExit); govmm ends the VM once it goes on.
	GuestExit
	// Trap: a #BP no breakpoint of ours explains (the guest's own int3
	// while int3 breakpoints are in use).
	Trap
)

func (w Why) String() string {
	switch w {
	case Interrupted:
		return "interrupted"
	case Stepped:
		return "step"
	case AtBreakpoint:
		return "breakpoint"
	case AtExit:
		return "exit"
	case GuestExit:
		return "guest exit"
	case Trap:
		return "trap"
	}
	return fmt.Sprintf("Why(%d)", int(w))
}

// Stop is one stop of the machine, reported by Wait: the vCPU that caused
// it and why. Every vCPU is stopped when Wait returns it.
type Stop struct {
	VCPU int
	Why  Why
	// Addr is the breakpoint's address (AtBreakpoint, Trap).
	Addr uint64
	// Break is the index of the exit break that matched (AtExit; -1 for
	// RunToExit's stop).
	Break int
	// Exit is the exit, decoded (AtExit, GuestExit); its Data aliases
	// KVM's run page, valid until the machine runs again.
	Exit trace.Info
	// Culprit is the instruction that made the exit, when found.
	Culprit     trace.Culprit
	HaveCulprit bool
	// During are the exits the vCPU made while it ran to this stop (a
	// step's OUT), as trace.Line writes them.
	During []string
}

// ErrEnded is returned by Wait once every vCPU has stopped for good: the
// guest ended the VM, or it failed.
var ErrEnded = errors.New("the guest has ended")

// mode is what one vCPU is doing as far as the debugger knows.
type mode int

const (
	running  mode = iota // released with Continue
	stepping             // released with Step: one instruction, then stop
	skipping             // stepping off an address breakpoint, then running
	held                 // answered Stop: in the Debug state, or about to be
	done                 // Run returned
)

type cpu struct {
	mode      mode
	requested bool // an all-stop asked it to stop at its next event
	// atExit says the vCPU is held at an exit, before the loop handled
	// it; exitDone that the exit's instruction had already completed (KVM's
	// emulator moved RIP past an OUT or MMIO write).
	atExit, exitDone bool
	during           []string
	// reinsert is an int3 breakpoint the vCPU is stepping off: its
	// instruction's byte is back in memory until the step ends.
	reinsert    uint64
	hasReinsert bool
}

// Debugger is the vCPUs of one machine under a front end's control.
type Debugger struct {
	vcpus    []*vcpu.VCPU
	emulated bool

	mu      sync.Mutex
	cpus    []cpu
	primary *Stop         // the stop Wait will report, once all are held
	changed chan struct{} // a token when held or done counts change
	quit    chan struct{} // Close

	// StopAtGuestExit stops the machine when the guest writes its exit
	// status to the debug-exit device, before govmm ends the VM (the
	// stepper wants it; gdb gets the status when the VM ends).
	StopAtGuestExit bool

	bps        breakpoints
	exitBreaks []ExitBreak
	toExit     bool // RunToExit: stop at the next user-space exit
}

// New makes a debugger for vcpus. emulated says KVM emulates the guest's
// port I/O (PVM hosts). It does not install itself: make it every vCPU's
// observer (alone or in a vcpu.Chain), then call StopAll before the
// machine runs to hold it at its first instruction.
func New(vcpus []*vcpu.VCPU, emulated bool) *Debugger {
	d := &Debugger{
		vcpus:    vcpus,
		emulated: emulated,
		cpus:     make([]cpu, len(vcpus)),
		changed:  make(chan struct{}, 1),
		quit:     make(chan struct{}),
	}
	for i, v := range vcpus {
		go func() {
			select {
			case <-v.Done():
				d.mu.Lock()
				d.cpus[i].mode = done
				d.mu.Unlock()
				d.signal()
			case <-d.quit:
			}
		}()
	}
	return d
}

// Close stops watching the vCPUs.
func (d *Debugger) Close() { close(d.quit) }

// VCPUs is how many vCPUs the machine has.
func (d *Debugger) VCPUs() int { return len(d.vcpus) }

func (d *Debugger) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// StopAll stops every running vCPU; the next Wait reports Interrupted
// once they all are. Before the machine runs, it holds each vCPU before
// its first instruction.
func (d *Debugger) StopAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.primary == nil {
		d.primary = &Stop{VCPU: 0, Why: Interrupted, Break: -1}
	}
	d.interruptOthers(-1)
}

// interruptOthers asks every running vCPU but except to stop. Called with mu.
func (d *Debugger) interruptOthers(except int) {
	for i := range d.cpus {
		c := &d.cpus[i]
		if i == except || c.mode == held || c.mode == done {
			continue
		}
		c.requested = true
		d.vcpus[i].Interrupt()
	}
}

// Wait waits until the machine has stopped, every vCPU held, and says
// why; ErrEnded once no vCPU runs any more.
func (d *Debugger) Wait(ctx context.Context) (Stop, error) {
	for {
		d.mu.Lock()
		nHeld, nDone := 0, 0
		for _, c := range d.cpus {
			switch c.mode {
			case held:
				nHeld++
			case done:
				nDone++
			}
		}
		if nDone == len(d.cpus) {
			d.mu.Unlock()
			return Stop{}, ErrEnded
		}
		if d.primary != nil && nHeld+nDone == len(d.cpus) {
			s := *d.primary
			d.primary = nil
			d.mu.Unlock()
			return s, nil
		}
		d.mu.Unlock()
		select {
		case <-d.changed:
		case <-ctx.Done():
			return Stop{}, ctx.Err()
		}
	}
}

// hold makes vCPU id held for s: the first stop since the machine last
// went on is the one Wait reports, and it stops every other vCPU; later
// ones are companions, and their own reasons are dropped (a breakpoint
// that another vCPU reaches meanwhile is reached again when it goes on).
// Called with mu; returns the action for the observer.
func (d *Debugger) hold(id int, s Stop, a vcpu.Action) vcpu.Action {
	c := &d.cpus[id]
	c.mode, c.requested = held, false
	if d.primary == nil {
		s.VCPU = id
		s.During = c.during
		d.primary = &s
		d.interruptOthers(id)
	}
	c.during = nil
	d.signal()
	return a
}

// action is what a vCPU that goes on does next: keep stepping if it is.
func (c *cpu) action() vcpu.Action {
	if c.mode == stepping || c.mode == skipping {
		return vcpu.Step
	}
	return vcpu.Continue
}

// Exit is the observer: it decides at each exit whether the vCPU stops.
func (d *Debugger) Exit(ev *vcpu.Event) vcpu.Action {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &d.cpus[ev.VCPU]
	c.atExit, c.exitDone = false, false
	if ev.Requested {
		if c.requested {
			return d.hold(ev.VCPU, Stop{Why: Interrupted, Break: -1}, vcpu.Stop)
		}
		return c.action()
	}
	switch e := ev.Exit.(type) {
	case *kvm.DebugExit:
		return d.debugExit(ev, c, e)
	case *kvm.InternalErrorExit:
		return d.emulationFailure(ev, c, e)
	case *kvm.IOExit, *kvm.MMIOExit:
		return d.access(ev, c)
	case *kvm.InterruptedExit:
		return c.action()
	}
	// A halt, a shutdown, a system event: the loop ends the run with it,
	// unless an exit break or RunToExit holds the vCPU there first.
	return d.other(ev, c)
}

// other is any other exit: stop at it if asked to.
func (d *Debugger) other(ev *vcpu.Event, c *cpu) vcpu.Action {
	if c.mode == stepping || c.mode == skipping {
		return vcpu.Step
	}
	info := trace.DescribeEvent(ev)
	stop := Stop{Exit: info, Break: -1, Why: AtExit}
	if d.toExit {
		d.toExit = false
	} else if stop.Break = d.matchExitBreak(&info); stop.Break < 0 {
		return c.action()
	}
	stop.Culprit, stop.HaveCulprit = trace.FindCulprit(ev.State, ev.Exit, d.emulated)
	c.atExit = true
	return d.hold(ev.VCPU, stop, vcpu.Stop)
}

// Handled does nothing: the debugger decides before exits are handled.
func (d *Debugger) Handled(*vcpu.Event) {}

// debugExit is a step or a breakpoint KVM reports.
func (d *Debugger) debugExit(ev *vcpu.Event, c *cpu, e *kvm.DebugExit) vcpu.Action {
	const dr6BS = 1 << 14
	if e.Exception == 3 { // #BP: an int3 breakpoint, or the guest's own
		// KVM reports the int3's linear address; RIP is still on it.
		if d.bps.softAt(e.PC) {
			return d.hold(ev.VCPU, Stop{Why: AtBreakpoint, Addr: e.PC, Break: -1}, vcpu.Stop)
		}
		return d.hold(ev.VCPU, Stop{Why: Trap, Addr: e.PC, Break: -1}, vcpu.Stop)
	}
	if e.DR6&dr6BS != 0 {
		switch c.mode {
		case stepping:
			d.reinsert(ev, c)
			return d.hold(ev.VCPU, Stop{Why: Stepped, Break: -1}, vcpu.Stop)
		case skipping:
			return d.skipped(ev, c)
		}
	}
	if slot, ok := d.bps.hardHit(e.DR6); ok {
		return d.hold(ev.VCPU, Stop{Why: AtBreakpoint, Addr: d.bps.hard[slot], Break: -1}, vcpu.Stop)
	}
	return c.action()
}

// skipped ends a step off an address breakpoint: the breakpoints are set
// again and the vCPU runs on.
func (d *Debugger) skipped(ev *vcpu.Event, c *cpu) vcpu.Action {
	c.mode = running
	d.reinsert(ev, c)
	if err := ev.State.SetGuestDebug(d.bps.guestDebug(noSkip)); err != nil {
		return d.hold(ev.VCPU, Stop{Why: Trap, Break: -1}, vcpu.Stop)
	}
	return vcpu.Continue
}

// reinsert writes back the int3 a vCPU stepped off, if it still marks a
// breakpoint. Called with mu, on the vCPU's thread.
func (d *Debugger) reinsert(ev *vcpu.Event, c *cpu) {
	if !c.hasReinsert {
		return
	}
	c.hasReinsert = false
	if d.bps.softAt(c.reinsert) {
		// A failure leaves the original byte: the breakpoint is lost,
		// the guest is not harmed.
		_, _ = ev.State.WriteLinear(c.reinsert, []byte{0xCC})
	}
}

// offSoft puts back the byte under an int3 breakpoint at pc, for a step
// off it; reinsert writes the int3 again when the step ends. It reports
// whether there was one. Called on the vCPU's thread, without mu.
func (d *Debugger) offSoft(h *vcpu.Handle, id int, pc uint64) (bool, error) {
	d.mu.Lock()
	orig, ok := d.bps.soft[pc]
	d.mu.Unlock()
	if !ok {
		return false, nil
	}
	if _, err := h.WriteLinear(pc, []byte{orig}); err != nil {
		return false, err
	}
	d.mu.Lock()
	d.cpus[id].reinsert, d.cpus[id].hasReinsert = pc, true
	d.mu.Unlock()
	return true, nil
}

// emulationFailure catches the int3 of a breakpoint that KVM's emulator
// could not run (guest ring 0 on PVM hosts). Any other failure is the
// loop's to handle.
func (d *Debugger) emulationFailure(ev *vcpu.Event, c *cpu, e *kvm.InternalErrorExit) vcpu.Action {
	insn := e.Instruction()
	if len(insn) > 0 && insn[0] == 0xCC {
		if pc, err := ev.State.PC(); err == nil && d.bps.softAt(pc) {
			ev.Consume()
			return d.hold(ev.VCPU, Stop{Why: AtBreakpoint, Addr: pc, Break: -1}, vcpu.Stop)
		}
	}
	return d.other(ev, c)
}

// access is a port or MMIO exit: it may end a step, match an exit break,
// be the one RunToExit waits for, or be the guest's exit.
func (d *Debugger) access(ev *vcpu.Event, c *cpu) vcpu.Action {
	info := trace.DescribeEvent(ev)
	if c.mode == stepping || c.mode == skipping {
		c.during = append(c.during, trace.Line(&info))
		cul, ok := trace.FindCulprit(ev.State, ev.Exit, d.emulated)
		if !ok || !cul.Done {
			return vcpu.Step // the instruction completes, and traps, when the loop runs it again
		}
		// KVM's emulator finished the instruction before this exit (and
		// will not trap after it): the step is over once it is handled.
		if c.mode == skipping {
			return d.skipped(ev, c)
		}
		d.reinsert(ev, c)
		return d.hold(ev.VCPU, Stop{Why: Stepped, Break: -1}, vcpu.StopAfter)
	}
	stop := Stop{Exit: info, Break: -1}
	stop.Culprit, stop.HaveCulprit = trace.FindCulprit(ev.State, ev.Exit, d.emulated)
	switch {
	case d.StopAtGuestExit && info.Write && isDebugExit(info.Device):
		stop.Why = GuestExit
	case d.toExit:
		stop.Why = AtExit
		d.toExit = false
	default:
		i := d.matchExitBreak(&info)
		if i < 0 {
			return c.action()
		}
		stop.Why, stop.Break = AtExit, i
	}
	c.atExit, c.exitDone = true, stop.HaveCulprit && stop.Culprit.Done
	return d.hold(ev.VCPU, stop, vcpu.Stop)
}

// isDebugExit says whether a device is govmm's debug-exit device (its port
// or its MMIO alias).
func isDebugExit(name string) bool {
	return name == "debug-exit" || name == "debug-exit (MMIO alias)"
}

// Do runs fn on stopped vCPU id's thread (see vcpu.VCPU.Do).
func (d *Debugger) Do(ctx context.Context, id int, fn func(*vcpu.Handle) error) error {
	if id < 0 || id >= len(d.vcpus) {
		return fmt.Errorf("no vCPU %d: the machine has %d", id, len(d.vcpus))
	}
	return d.vcpus[id].Do(ctx, fn)
}

// Continue lets every vCPU run. One that stands on an address breakpoint
// first steps off it with its breakpoints out of the way.
func (d *Debugger) Continue(ctx context.Context) error {
	return d.release(ctx)
}

// RunToExit lets every vCPU run until one makes a user-space exit: the
// machine stops there, before the exit is handled.
func (d *Debugger) RunToExit(ctx context.Context) error {
	d.mu.Lock()
	d.toExit = true
	d.mu.Unlock()
	return d.release(ctx)
}

// release lets every held vCPU run. Each gets the breakpoints first; one
// that stands on an address breakpoint steps off it with that one left
// out, then runs on with them all.
func (d *Debugger) release(ctx context.Context) error {
	d.mu.Lock()
	var ids []int
	for i, c := range d.cpus {
		if c.mode == held {
			ids = append(ids, i)
		}
	}
	d.primary = nil // a stop not yet waited for is over once the machine goes on
	d.mu.Unlock()
	acts := make([]vcpu.Action, len(ids))
	for k, id := range ids {
		if err := d.Do(ctx, id, func(h *vcpu.Handle) error {
			pc, err := h.PC()
			if err != nil {
				return err
			}
			d.mu.Lock()
			slot, on := d.bps.hardAt(pc)
			g := d.bps.guestDebug(slot)
			d.mu.Unlock()
			soft, err := d.offSoft(h, id, pc)
			if err != nil {
				return err
			}
			if on || soft {
				acts[k] = vcpu.Step
			}
			return h.SetGuestDebug(g)
		}); err != nil {
			return err
		}
	}
	d.mu.Lock()
	for k, id := range ids {
		c := &d.cpus[id]
		if c.mode == held {
			c.mode, c.atExit, c.exitDone = running, false, false
			if acts[k] == vcpu.Step {
				c.mode = skipping
			}
		}
	}
	d.mu.Unlock()
	var errs []error
	for k, id := range ids {
		if err := d.vcpus[id].Release(ctx, acts[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Step runs one instruction on vCPU id while the others stay stopped; the
// next Wait reports it (Stepped), with the exits it made in Stop.During.
//
// KVM's emulator (PVM hosts, real mode) completes an OUT or an MMIO write
// before it exits to user space and does not trap after it; hardware
// virtualization exits with the instruction still to complete. So a
// vCPU stopped at such an exit whose instruction is done steps by having
// the exit handled and nothing more, and a step that meets one ends once
// it is handled: one guest instruction per step on every host.
func (d *Debugger) Step(ctx context.Context, id int) error {
	if id < 0 || id >= len(d.cpus) {
		return fmt.Errorf("no vCPU %d: the machine has %d", id, len(d.cpus))
	}
	d.mu.Lock()
	c := &d.cpus[id]
	if c.mode != held {
		d.mu.Unlock()
		return fmt.Errorf("vCPU %d is not stopped", id)
	}
	if c.atExit && c.exitDone {
		// Stay held: the loop handles the exit and holds the vCPU again.
		c.atExit, c.exitDone = false, false
		d.primary = &Stop{VCPU: id, Why: Stepped, Break: -1}
		d.mu.Unlock()
		err := d.vcpus[id].Release(ctx, vcpu.StopAfter)
		d.signal()
		return err
	}
	d.mu.Unlock()
	// A step from an address breakpoint would stop on it again at once.
	if err := d.Do(ctx, id, func(h *vcpu.Handle) error {
		pc, err := h.PC()
		if err != nil {
			return err
		}
		d.mu.Lock()
		slot, _ := d.bps.hardAt(pc)
		g := d.bps.guestDebug(slot)
		d.mu.Unlock()
		if _, err := d.offSoft(h, id, pc); err != nil {
			return err
		}
		return h.SetGuestDebug(g)
	}); err != nil {
		return err
	}
	d.mu.Lock()
	c.mode, c.atExit, c.during = stepping, false, nil
	d.primary = nil
	d.mu.Unlock()
	return d.vcpus[id].Release(ctx, vcpu.Step)
}

// Ended says whether every vCPU has stopped for good.
func (d *Debugger) Ended() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.cpus {
		if c.mode != done {
			return false
		}
	}
	return true
}
