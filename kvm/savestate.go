package kvm

// The vCPU state a snapshot or a migration needs beyond what vcpu.go's
// accessors read: extended control registers, debug registers, the TSC
// frequency, and which MSRs KVM can save (KVM API documentation 4.41,
// 4.32, 4.55, 4.3).

// XCR mirrors struct kvm_xcr: one extended control register.
type XCR struct {
	XCR   uint32 // which: 0 is XCR0, the enabled XSAVE components
	_     uint32
	Value uint64
}

// MaxXCRs is KVM_MAX_XCRS, the room in XCRs.
const MaxXCRs = 16

// XCRs mirrors struct kvm_xcrs: the vCPU's extended control registers
// (KVM_GET_XCRS; needs KVM_CAP_XCRS).
type XCRs struct {
	NXCRs uint32 // how many of XCRs hold a register
	Flags uint32
	XCRs  [MaxXCRs]XCR
	_     [16]uint64
}

// DebugRegs mirrors struct kvm_debugregs: DR0-DR3, DR6 and DR7
// (KVM_GET_DEBUGREGS; needs KVM_CAP_DEBUGREGS).
type DebugRegs struct {
	DB    [4]uint64 // DR0-DR3: breakpoint addresses
	DR6   uint64
	DR7   uint64
	Flags uint64
	_     [9]uint64
}

// msrListHeader mirrors the fixed part of struct kvm_msr_list; the u32
// indices follow it.
type msrListHeader struct {
	NMSRs uint32
}

// maxMSRIndices bounds MSRIndexList's buffer; KVM's list is a few hundred.
const maxMSRIndices = 4096
