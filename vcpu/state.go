package vcpu

import "fmt"

// RunState is where a vCPU is in its life. The transitions, made by the
// vCPU's own thread in Run except Resume's:
//
//	Created --Run--> Running
//	Running --Pause--> Paused    the loop, between two KVM_RUNs, answering
//	                             the one Pause still waiting
//	Paused  --Resume--> Running  Resume itself, so a second Resume fails
//	Running --observer answers Stop or StopAfter--> Debug
//	                             the loop, at an exit or answering Interrupt;
//	                             it serves Do there
//	Debug   --Release--> Running the loop, taking the debugger's action
//	Running --guest stops, error, Stop or context done--> Stopped
//	Paused  --Stop or context done--> Stopped
//	Debug   --Stop or context done--> Stopped
//
// Stopped is final. A Pause whose context ends before the loop answers it
// is withdrawn: the vCPU stays Running and never pauses for it. Pause
// refuses a vCPU in the Debug state: a debugger holds it.
type RunState int32

const (
	Created RunState = iota
	Running
	Paused
	Stopped
	// Debug: held by a debugger between two KVM_RUNs (debug.go).
	Debug
)

func (s RunState) String() string {
	switch s {
	case Created:
		return "created"
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Stopped:
		return "stopped"
	case Debug:
		return "debug"
	}
	return fmt.Sprintf("RunState(%d)", int32(s))
}

// StopReason says why a vCPU stopped running the guest. Its zero value,
// StopUnknown, is what a failed Run returns with its error: no reason can
// ever be read as a power off by accident.
type StopReason int

const (
	// StopUnknown: no reason, because Run failed (its error says why) or
	// has not returned.
	StopUnknown StopReason = iota
	// StopPowerOff: the guest asked to power off (ACPI, a PSCI-like
	// system event, or the debug-exit device with its status).
	StopPowerOff
	// StopReset: the guest asked for a reset (i8042 pulse, system event).
	// govmm ends the VM; it does not reboot it.
	StopReset
	// StopHalt: the guest executed HLT with no in-kernel irqchip to wake it.
	StopHalt
	// StopCanceled: the VMM stopped the guest from outside.
	StopCanceled
)

func (r StopReason) String() string {
	switch r {
	case StopUnknown:
		return "unknown"
	case StopPowerOff:
		return "power off"
	case StopReset:
		return "reset"
	case StopHalt:
		return "halt"
	case StopCanceled:
		return "stopped by the VMM"
	}
	return fmt.Sprintf("StopReason(%d)", int(r))
}
