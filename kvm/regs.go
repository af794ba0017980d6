package kvm

// Regs mirrors struct kvm_regs: the general-purpose registers of a vCPU.
type Regs struct {
	RAX, RBX, RCX, RDX uint64
	RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11   uint64
	R12, R13, R14, R15 uint64
	RIP, RFLAGS        uint64
}

// Segment mirrors struct kvm_segment: a segment register with its hidden
// descriptor part unpacked into fields.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	Type     uint8 // descriptor type (the 4-bit type field)
	Present  uint8
	DPL      uint8
	DB       uint8 // default operand size (D/B bit)
	S        uint8 // 1 for code/data, 0 for system segments
	L        uint8 // 64-bit code segment
	G        uint8 // granularity: limit in 4 KiB units
	AVL      uint8
	Unusable uint8
	_        uint8
}

// DTable mirrors struct kvm_dtable: a descriptor-table register (GDTR, IDTR).
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs mirrors struct kvm_sregs: segment, descriptor-table and control
// registers, EFER, the APIC base and the pending-interrupt bitmap.
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	// InterruptBitmap has one bit per vector (KVM_NR_INTERRUPTS = 256) for
	// an external interrupt pending injection.
	InterruptBitmap [4]uint64
}

// FPU mirrors struct kvm_fpu: x87 and SSE state in the FXSAVE layout.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8 // abridged tag word, as FXSAVE stores it
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}
