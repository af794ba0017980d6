package kvm

import (
	"fmt"
	"strings"
)

// Exit is why KVM_RUN returned to the VMM, decoded from struct kvm_run. The
// concrete types are the *...Exit types of this package.
//
// Run returns pointers to values the VCPU owns and reuses: an Exit and the
// slices inside it are valid only until the next call to Run.
type Exit interface {
	fmt.Stringer
	isExit()
}

// IOExit is a port I/O instruction (KVM_EXIT_IO). Data aliases the kvm_run
// page and holds Size*Count bytes: for OUT it is what the guest wrote; for
// IN the VMM fills it before the next Run.
type IOExit struct {
	Port  uint16
	Out   bool
	Size  uint8  // bytes per access: 1, 2 or 4
	Count uint32 // accesses, more than one for a REP INS/OUTS string instruction
	Data  []byte
}

// MMIOExit is a guest access to a guest-physical address with no memory slot
// (KVM_EXIT_MMIO). Data aliases the kvm_run page: for a write it holds what
// the guest wrote; for a read the VMM fills it before the next Run.
type MMIOExit struct {
	Addr  uint64
	Write bool
	Data  []byte
}

// HLTExit is a HLT with no in-kernel irqchip to wait on (KVM_EXIT_HLT).
type HLTExit struct{}

// ShutdownExit is a triple fault or similar that resets the CPU
// (KVM_EXIT_SHUTDOWN).
type ShutdownExit struct{}

// SystemEventExit is a guest request to the platform (KVM_EXIT_SYSTEM_EVENT),
// such as a PSCI or ACPI shutdown.
type SystemEventExit struct {
	Type SystemEventType
	// Data is system_event.data[:ndata], valid where KVM offers
	// CapSystemEventData.
	Data []uint64
	data [16]uint64
}

// SystemEventType is system_event.type of struct kvm_run.
type SystemEventType uint32

// SystemEventType values (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown SystemEventType = 1 // KVM_SYSTEM_EVENT_SHUTDOWN
	SystemEventReset    SystemEventType = 2 // KVM_SYSTEM_EVENT_RESET
	SystemEventCrash    SystemEventType = 3 // KVM_SYSTEM_EVENT_CRASH
	SystemEventWakeup   SystemEventType = 4 // KVM_SYSTEM_EVENT_WAKEUP
	SystemEventSuspend  SystemEventType = 5 // KVM_SYSTEM_EVENT_SUSPEND
	SystemEventSEVTerm  SystemEventType = 6 // KVM_SYSTEM_EVENT_SEV_TERM
)

var systemEventNames = [...]string{
	SystemEventShutdown: "shutdown",
	SystemEventReset:    "reset",
	SystemEventCrash:    "crash",
	SystemEventWakeup:   "wakeup",
	SystemEventSuspend:  "suspend",
	SystemEventSEVTerm:  "sev-term",
}

func (t SystemEventType) String() string {
	if int(t) < len(systemEventNames) && systemEventNames[t] != "" {
		return systemEventNames[t]
	}
	return fmt.Sprintf("system event %d", uint32(t))
}

// FailEntryExit means the hardware refused to enter the guest
// (KVM_EXIT_FAIL_ENTRY), usually because of inconsistent guest state.
type FailEntryExit struct {
	Reason uint64 // hardware_entry_failure_reason (VMX/SVM specific)
	CPU    uint32 // host CPU the entry was tried on
}

// InternalErrorExit is KVM giving up (KVM_EXIT_INTERNAL_ERROR), most often
// because its instruction emulator met an instruction it cannot emulate.
type InternalErrorExit struct {
	Suberror InternalError
	Data     []uint64 // internal.data[:ndata]
	data     [16]uint64
}

// InternalError is internal.suberror of struct kvm_run.
type InternalError uint32

// InternalError values (KVM_INTERNAL_ERROR_*).
const (
	InternalErrorEmulation            InternalError = 1 // KVM_INTERNAL_ERROR_EMULATION: the emulator failed
	InternalErrorSimulEx              InternalError = 2 // KVM_INTERNAL_ERROR_SIMUL_EX: an exception while delivering another
	InternalErrorDeliveryEv           InternalError = 3 // KVM_INTERNAL_ERROR_DELIVERY_EV: an exit while delivering an event
	InternalErrorUnexpectedExitReason InternalError = 4 // KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON
)

var internalErrorNames = [...]string{
	InternalErrorEmulation:            "emulation failure",
	InternalErrorSimulEx:              "exception while delivering an exception",
	InternalErrorDeliveryEv:           "exit while delivering an event",
	InternalErrorUnexpectedExitReason: "unexpected hardware exit reason",
}

func (e InternalError) String() string {
	if int(e) < len(internalErrorNames) && internalErrorNames[e] != "" {
		return internalErrorNames[e]
	}
	return fmt.Sprintf("suberror %d", uint32(e))
}

// emulationFlagInstructionBytes is KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES.
const emulationFlagInstructionBytes = 1 << 0

// Instruction returns the bytes of the instruction the emulator failed on,
// or nil when KVM did not report them. Per struct emulation_failure in
// linux/kvm.h, Data[0] is flags and, with the instruction-bytes flag,
// Data[1:3] hold insn_size followed by up to 15 instruction bytes.
func (e *InternalErrorExit) Instruction() []byte {
	if e.Suberror != InternalErrorEmulation || len(e.Data) < 3 || e.Data[0]&emulationFlagInstructionBytes == 0 {
		return nil
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(e.Data[1+i/8] >> (8 * (i % 8)))
	}
	n := int(b[0])
	if n > 15 {
		n = 15
	}
	return append([]byte(nil), b[1:1+n]...)
}

// DebugExit is a debug event requested with SetGuestDebug (KVM_EXIT_DEBUG):
// a single step, a breakpoint or a watchpoint.
type DebugExit struct {
	Exception uint32 // vector: 1 (#DB) or 3 (#BP)
	PC        uint64
	DR6, DR7  uint64
}

// InterruptedExit means KVM_RUN returned before the guest exited on its own:
// a signal arrived (EINTR, for example Go's preemption signal), the exit
// reason was KVM_EXIT_INTR, or SetImmediateExit asked for it. The caller
// decides whether to run again.
type InterruptedExit struct{}

// UnknownExit is an exit reason this package does not decode. The run loop
// should stop: it implements error so it can be returned as one.
type UnknownExit struct {
	Reason ExitReason
	// HardwareReason is hw.hardware_exit_reason for KVM_EXIT_UNKNOWN.
	HardwareReason uint64
}

func (*IOExit) isExit()            {}
func (*MMIOExit) isExit()          {}
func (*HLTExit) isExit()           {}
func (*ShutdownExit) isExit()      {}
func (*SystemEventExit) isExit()   {}
func (*FailEntryExit) isExit()     {}
func (*InternalErrorExit) isExit() {}
func (*DebugExit) isExit()         {}
func (*InterruptedExit) isExit()   {}
func (*UnknownExit) isExit()       {}

func (e *IOExit) String() string {
	dir := "in"
	if e.Out {
		dir = "out"
	}
	return fmt.Sprintf("io %s port %#x size %d count %d data % x", dir, e.Port, e.Size, e.Count, e.Data)
}

func (e *MMIOExit) String() string {
	dir := "read"
	if e.Write {
		dir = "write"
	}
	return fmt.Sprintf("mmio %s %#x len %d data % x", dir, e.Addr, len(e.Data), e.Data)
}

func (*HLTExit) String() string         { return "hlt" }
func (*ShutdownExit) String() string    { return "shutdown (triple fault)" }
func (*InterruptedExit) String() string { return "interrupted" }

func (e *SystemEventExit) String() string {
	return fmt.Sprintf("system event %v data %#x", e.Type, e.Data)
}

func (e *FailEntryExit) String() string {
	return fmt.Sprintf("entry failed: hardware reason %#x on host cpu %d", e.Reason, e.CPU)
}

func (e *InternalErrorExit) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "internal error: %v", e.Suberror)
	if insn := e.Instruction(); insn != nil {
		fmt.Fprintf(&b, ", instruction % x", insn)
	}
	fmt.Fprintf(&b, ", data %#x", e.Data)
	return b.String()
}

func (e *DebugExit) String() string {
	return fmt.Sprintf("debug: exception %d at pc %#x dr6 %#x dr7 %#x", e.Exception, e.PC, e.DR6, e.DR7)
}

func (e *UnknownExit) String() string {
	if e.Reason == ExitUnknown {
		return fmt.Sprintf("unhandled exit %v (hardware exit reason %#x)", e.Reason, e.HardwareReason)
	}
	return fmt.Sprintf("unhandled exit %v", e.Reason)
}

// Error makes an UnknownExit usable as the error that ends a run loop.
func (e *UnknownExit) Error() string { return "kvm: " + e.String() }
