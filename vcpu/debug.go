package vcpu

import (
	"context"
	"fmt"
	"time"

	"github.com/govmm/govmm/kvm"
)

// This file is the loop's side of debugging: the observed loop (timing,
// observers, actions), the Debug state and the calls a debugger makes on
// a vCPU from its own goroutine (Interrupt, Do, Release).

// debugCmd is one request to a vCPU in the Debug state: run fn on the
// vCPU's thread, or, with fn nil, leave the Debug state with action.
type debugCmd struct {
	fn     func(*Handle) error
	action Action
	done   chan error
}

// Interrupt asks the loop to show its observer a Requested event as soon
// as it can: between two KVM_RUNs, with the guest kicked out of one if it
// is inside. An observer that answers Stop puts the vCPU in the Debug
// state there; this is how a debugger stops every vCPU (all-stop). It
// returns at once; a vCPU without an observer just goes on.
func (v *VCPU) Interrupt() {
	v.requests.Or(reqDebug)
	v.kick()
}

// Done is closed when Run has returned.
func (v *VCPU) Done() <-chan struct{} { return v.exited }

// Do runs fn on the vCPU's thread, with a Handle on it, while the vCPU is
// in the Debug state, and returns fn's error. It waits until the vCPU is
// in the Debug state (call it only for a vCPU an observer has stopped),
// ctx is done or Run returns.
func (v *VCPU) Do(ctx context.Context, fn func(*Handle) error) error {
	return v.debugCommand(ctx, debugCmd{fn: fn, done: make(chan error, 1)})
}

// Release lets a vCPU in the Debug state go on. a is Continue, Step or
// StopAfter: when the vCPU stopped before handling its exit (Stop), the
// exit is handled first; then Continue runs the guest, Step runs one
// instruction, and StopAfter (for a stop before the exit was handled)
// stops again once it is.
func (v *VCPU) Release(ctx context.Context, a Action) error {
	if a != Continue && a != Step && a != StopAfter {
		return fmt.Errorf("vcpu %d: release with %v: give continue, step or stop after", v.ID, a)
	}
	return v.debugCommand(ctx, debugCmd{action: a, done: make(chan error, 1)})
}

func (v *VCPU) debugCommand(ctx context.Context, c debugCmd) error {
	select {
	case v.debugCmds <- c:
	case <-ctx.Done():
		return fmt.Errorf("vcpu %d: %w", v.ID, ctx.Err())
	case <-v.exited:
		return fmt.Errorf("vcpu %d: stopped", v.ID)
	}
	return <-c.done
}

// debugWait is the Debug state: the loop serves Do and waits for Release
// or Stop. after says the exit has been handled already, so StopAfter is
// no longer an answer (it is read as Continue). It returns the action and
// whether the loop must end.
func (v *VCPU) debugWait(after bool) (Action, bool) {
	v.mu.Lock()
	v.state.Store(int32(Debug))
	v.mu.Unlock()
	for {
		select {
		case c := <-v.debugCmds:
			if c.fn != nil {
				c.done <- c.fn(&v.access)
				continue
			}
			v.mu.Lock()
			v.state.Store(int32(Running))
			v.mu.Unlock()
			c.done <- nil
			if after && c.action == StopAfter {
				return Continue, false
			}
			return c.action, false
		case <-v.stopCh:
			return Continue, true
		}
	}
}

// serveDebugRequest answers Interrupt: the observer sees a Requested
// event and may stop the vCPU. It reports whether the loop must end.
func (v *VCPU) serveDebugRequest() bool {
	v.requests.And(^reqDebug)
	o := v.observer.Load()
	if o == nil {
		return false
	}
	ev := &v.event
	ev.reset(v.ID, &v.requested, 0)
	ev.Requested = true
	a := (*o).Exit(ev)
	if a == Stop || a == StopAfter {
		var end bool
		if a, end = v.debugWait(true); end {
			return true
		}
	}
	v.stepping = a == Step
	return false
}

// reset readies the event for a new exit.
func (e *Event) reset(id int, exit kvm.Exit, inRun time.Duration) {
	e.VCPU, e.Exit, e.InRun, e.Handling = id, exit, inRun, 0
	e.Requested, e.consumed = false, false
	e.State.forget()
}

// runObserved is one turn of the loop with an observer: KVM_RUN timed, the
// observer asked before and told after the exit is handled, the Debug
// state entered when it says so.
func (v *VCPU) runObserved(o Observer) (StopReason, bool, error) {
	if err := v.applyGuestDebug(); err != nil {
		return StopUnknown, true, err
	}
	t0 := time.Now()
	exit, err := v.HW.Run()
	t1 := time.Now()
	if err != nil {
		return StopUnknown, true, fmt.Errorf("vcpu %d: KVM_RUN failed (the VMM or host is at fault, not the guest): %w", v.ID, err)
	}
	ev := &v.event
	ev.reset(v.ID, exit, t1.Sub(t0))
	a := o.Exit(ev)
	if a == Stop {
		var end bool
		if a, end = v.debugWait(false); end {
			return StopCanceled, true, nil
		}
	}
	var (
		reason StopReason
		stop   bool
	)
	if _, debugExit := exit.(*kvm.DebugExit); debugExit && v.applied.Control != 0 {
		ev.consumed = true // the debugger asked for it
	}
	if !ev.consumed {
		t2 := time.Now() // the observers' own time is not the exit's
		reason, stop, err = v.handle(exit)
		ev.State.forget() // a fixup may have changed the registers
		ev.Handling = time.Since(t2)
	}
	o.Handled(ev)
	if err != nil || stop {
		return reason, true, err
	}
	if a == StopAfter {
		var end bool
		if a, end = v.debugWait(true); end {
			return StopCanceled, true, nil
		}
	}
	v.stepping = a == Step
	return StopUnknown, false, nil
}

// applyGuestDebug gives KVM the debugger's breakpoints plus single-step
// when the next run is one step, if that differs from what KVM has.
func (v *VCPU) applyGuestDebug() error {
	want := v.debugBase
	if v.stepping {
		want.Control |= kvm.GuestDebugSingleStep
	}
	if want.Control != 0 {
		want.Control |= kvm.GuestDebugEnable
	}
	if want == v.applied {
		return nil
	}
	hw, ok := v.HW.(DebugHardware)
	if !ok {
		return fmt.Errorf("vcpu %d: %w", v.ID, ErrNoDebug)
	}
	// The argument lives in the VCPU: a local whose address is taken
	// would be allocated on every turn of the loop.
	v.debugArg = want
	if err := hw.SetGuestDebug(&v.debugArg); err != nil {
		return fmt.Errorf("vcpu %d: %w", v.ID, err)
	}
	v.applied = want
	return nil
}
