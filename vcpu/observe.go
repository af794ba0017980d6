package vcpu

import (
	"strconv"
	"time"

	"github.com/govmm/govmm/kvm"
)

// Observer watches a vCPU's run loop: the exit tracer, the exit
// statistics, the flight recorder and the debuggers (the stepper and the
// gdb stub) are observers. Both methods run on the vCPU's own thread, in
// the loop, so they must be quick unless they mean to hold the guest; they
// may read and change the vCPU through ev.State.
//
// With no observer set the loop pays one atomic load per exit and reads no
// clock.
type Observer interface {
	// Exit sees an exit before the loop handles it and says what the loop
	// does next. It also sees the loop's answer to Interrupt
	// (ev.Requested), which is not an exit of the guest.
	Exit(ev *Event) Action
	// Handled sees the same exit once the loop has handled it: the data of
	// a port or MMIO read is filled in, ev.Handling is set. It is called
	// for the last exit too, when that one ends the run, and for exits the
	// loop left alone (ev.Consumed: a debugger's), but not for Requested
	// events.
	Handled(ev *Event)
}

// Action is what the run loop does after an observer has seen an exit.
// The zero value is Continue, so an observer that only watches cannot
// change what the loop does by forgetting to choose.
type Action int

// Actions, from the weakest to the strongest: Chain keeps the strongest
// of its observers' answers.
const (
	// Continue handles the exit and runs the guest on.
	Continue Action = iota
	// Step handles the exit and runs the guest for one instruction
	// (KVM_GUESTDBG_SINGLESTEP): KVM then exits with a *kvm.DebugExit.
	Step
	// StopAfter handles the exit, then puts the vCPU in the Debug state
	// before it runs again.
	StopAfter
	// Stop puts the vCPU in the Debug state at once, before the exit is
	// handled: a debugger sees the machine as the exit left it (an OUT's
	// byte not yet on the serial port). Release says what comes next.
	Stop
)

func (a Action) String() string {
	switch a {
	case Continue:
		return "continue"
	case Step:
		return "step"
	case StopAfter:
		return "stop after"
	case Stop:
		return "stop"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Event is one exit as observers see it. The vCPU owns it and reuses it
// for every exit, as kvm.VCPU does its exits: it and everything in it are
// valid only during the call that receives it, or, while the vCPU is
// stopped in the Debug state, until Release.
type Event struct {
	VCPU int
	// Exit is what KVM_RUN returned. For a Requested event it is a
	// *kvm.InterruptedExit that KVM never returned.
	Exit kvm.Exit
	// Requested says the loop is answering Interrupt: the guest did not
	// exit, and the loop has not entered KVM_RUN since the last exit.
	Requested bool
	// InRun is how long KVM_RUN ran before returning this exit: the time
	// the guest ran plus KVM's own work.
	InRun time.Duration
	// Handling is how long the loop took to act on the exit (the devices,
	// fixups); set for Handled.
	Handling time.Duration
	// State reads and changes the vCPU: registers, memory, guest debugging.
	State *Handle

	consumed bool
}

// Consume tells the loop not to handle the exit: a debugger has dealt
// with it. The int3 of a software breakpoint that KVM's emulator could not
// run (guest ring 0 on PVM hosts) is one: handled, it would become a #BP in
// the guest. A *kvm.DebugExit needs no Consume while guest debugging is on.
func (e *Event) Consume() { e.consumed = true }

// Consumed says whether the loop left the exit alone: an observer
// consumed it, or it is a *kvm.DebugExit while guest debugging is on.
func (e *Event) Consumed() bool { return e.consumed }

// Chain is several observers seen as one. Each sees every event, in
// order; Exit returns the strongest action any of them chose.
type Chain []Observer

// Exit shows ev to every observer and returns the strongest answer.
func (c Chain) Exit(ev *Event) Action {
	a := Continue
	for _, o := range c {
		if b := o.Exit(ev); b > a {
			a = b
		}
	}
	return a
}

// Handled shows ev to every observer.
func (c Chain) Handled(ev *Event) {
	for _, o := range c {
		o.Handled(ev)
	}
}
