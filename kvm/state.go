package kvm

// MSREntry mirrors struct kvm_msr_entry: one model-specific register.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// msrsHeader mirrors the fixed part of struct kvm_msrs; the entries follow
// it in memory.
type msrsHeader struct {
	NMSRs uint32
	_     uint32
}

// CPUIDEntry mirrors struct kvm_cpuid_entry2: the result of CPUID for one
// leaf (Function) and, where CPUIDFlagSignificantIndex is set, subleaf
// (Index).
type CPUIDEntry struct {
	Function uint32
	Index    uint32
	Flags    uint32
	EAX      uint32
	EBX      uint32
	ECX      uint32
	EDX      uint32
	_        [3]uint32
}

// CPUIDEntry.Flags bits (KVM_CPUID_FLAG_*).
const (
	CPUIDFlagSignificantIndex = 1 << 0 // KVM_CPUID_FLAG_SIGNIFCANT_INDEX: Index selects a subleaf
	CPUIDFlagStatefulFunc     = 1 << 1 // KVM_CPUID_FLAG_STATEFUL_FUNC
	CPUIDFlagStateReadNext    = 1 << 2 // KVM_CPUID_FLAG_STATE_READ_NEXT
)

// cpuid2Header mirrors the fixed part of struct kvm_cpuid2; the entries
// follow it in memory.
type cpuid2Header struct {
	NEnt uint32
	_    uint32
}

// LAPICState mirrors struct kvm_lapic_state: the local APIC's register page
// (KVM_APIC_REG_SIZE = 0x400 bytes), laid out as the APIC's MMIO page.
type LAPICState struct {
	Regs [1024]byte
}

// VCPUEvents mirrors struct kvm_vcpu_events: pending and injected
// exceptions, interrupts, NMIs and SMIs, for saving and restoring a vCPU.
type VCPUEvents struct {
	Exception           ExceptionEvent
	Interrupt           InterruptEvent
	NMI                 NMIEvent
	SIPIVector          uint32
	Flags               uint32 // VCPUEventValid* bits: which fields SetVCPUEvents applies
	SMI                 SMIEvent
	TripleFault         TripleFaultEvent
	_                   [26]uint8
	ExceptionHasPayload uint8
	ExceptionPayload    uint64
}

// ExceptionEvent mirrors the exception member of struct kvm_vcpu_events.
type ExceptionEvent struct {
	Injected     uint8
	Nr           uint8 // vector
	HasErrorCode uint8
	Pending      uint8
	ErrorCode    uint32
}

// InterruptEvent mirrors the interrupt member of struct kvm_vcpu_events.
type InterruptEvent struct {
	Injected uint8
	Nr       uint8 // vector
	Soft     uint8
	Shadow   uint8 // KVM_X86_SHADOW_INT_* bits
}

// NMIEvent mirrors the nmi member of struct kvm_vcpu_events.
type NMIEvent struct {
	Injected uint8
	Pending  uint8
	Masked   uint8
	_        uint8
}

// SMIEvent mirrors the smi member of struct kvm_vcpu_events.
type SMIEvent struct {
	SMM          uint8
	Pending      uint8
	SMMInsideNMI uint8
	LatchedInit  uint8
}

// TripleFaultEvent mirrors the triple_fault member of struct kvm_vcpu_events.
type TripleFaultEvent struct {
	Pending uint8
}

// VCPUEvents.Flags bits (KVM_VCPUEVENT_VALID_*).
const (
	VCPUEventValidNMIPending  = 1 << 0 // KVM_VCPUEVENT_VALID_NMI_PENDING
	VCPUEventValidSIPIVector  = 1 << 1 // KVM_VCPUEVENT_VALID_SIPI_VECTOR
	VCPUEventValidShadow      = 1 << 2 // KVM_VCPUEVENT_VALID_SHADOW
	VCPUEventValidSMM         = 1 << 3 // KVM_VCPUEVENT_VALID_SMM
	VCPUEventValidPayload     = 1 << 4 // KVM_VCPUEVENT_VALID_PAYLOAD
	VCPUEventValidTripleFault = 1 << 5 // KVM_VCPUEVENT_VALID_TRIPLE_FAULT
)

// MPState mirrors struct kvm_mp_state: the multiprocessing state of a vCPU.
type MPState struct {
	State uint32 // one of the MPState* constants
}

// MPState.State values (KVM_MP_STATE_*) that x86 uses.
const (
	MPStateRunnable      = 0 // KVM_MP_STATE_RUNNABLE
	MPStateUninitialized = 1 // KVM_MP_STATE_UNINITIALIZED: an AP waiting for INIT
	MPStateInitReceived  = 2 // KVM_MP_STATE_INIT_RECEIVED
	MPStateHalted        = 3 // KVM_MP_STATE_HALTED
	MPStateSIPIReceived  = 4 // KVM_MP_STATE_SIPI_RECEIVED
)

// GuestDebug mirrors struct kvm_guest_debug with its x86 arch part
// (struct kvm_guest_debug_arch).
type GuestDebug struct {
	Control GuestDebugControl
	_       uint32
	// DebugReg holds DR0-DR7 for hardware breakpoints (GuestDebugUseHWBP);
	// DR4 and DR5 are unused.
	DebugReg [8]uint64
}

// GuestDebugControl is the set of KVM_GUESTDBG_* bits of GuestDebug.
type GuestDebugControl uint32

// GuestDebugControl bits.
const (
	GuestDebugEnable     GuestDebugControl = 0x00000001 // KVM_GUESTDBG_ENABLE: turn debugging on; without it the rest is ignored
	GuestDebugSingleStep GuestDebugControl = 0x00000002 // KVM_GUESTDBG_SINGLESTEP: exit after each instruction
	GuestDebugUseSWBP    GuestDebugControl = 0x00010000 // KVM_GUESTDBG_USE_SW_BP: int3 exits to the VMM instead of the guest's #BP
	GuestDebugUseHWBP    GuestDebugControl = 0x00020000 // KVM_GUESTDBG_USE_HW_BP: DebugReg breakpoints exit to the VMM
	GuestDebugInjectDB   GuestDebugControl = 0x00040000 // KVM_GUESTDBG_INJECT_DB: inject #DB into the guest
	GuestDebugInjectBP   GuestDebugControl = 0x00080000 // KVM_GUESTDBG_INJECT_BP: inject #BP into the guest
	GuestDebugBlockIRQ   GuestDebugControl = 0x00100000 // KVM_GUESTDBG_BLOCKIRQ: no interrupts while stepping
)
