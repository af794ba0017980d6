package kvm

// ClockData mirrors struct kvm_clock_data: the VM's kvmclock value, saved and
// restored so guest time does not jump across a snapshot.
type ClockData struct {
	Clock    uint64 // nanoseconds
	Flags    uint32 // ClockTSCStable, ClockRealtime, ClockHostTSC
	_        uint32
	Realtime uint64 // host CLOCK_REALTIME in ns, valid with ClockRealtime
	HostTSC  uint64 // host TSC, valid with ClockHostTSC
	_        [4]uint32
}

// ClockData.Flags bits (KVM_CLOCK_*).
const (
	ClockTSCStable = 1 << 1 // KVM_CLOCK_TSC_STABLE
	ClockRealtime  = 1 << 2 // KVM_CLOCK_REALTIME
	ClockHostTSC   = 1 << 3 // KVM_CLOCK_HOST_TSC
)

// IRQChip mirrors struct kvm_irqchip. Chip is the 512-byte union of
// struct kvm_pic_state and struct kvm_ioapic_state, kept as bytes: the
// VMM only saves and restores it.
type IRQChip struct {
	ChipID uint32 // IRQChipPICMaster, IRQChipPICSlave or IRQChipIOAPIC
	_      uint32
	Chip   [512]byte
}

// IRQChip.ChipID values (KVM_IRQCHIP_*).
const (
	IRQChipPICMaster = 0 // KVM_IRQCHIP_PIC_MASTER
	IRQChipPICSlave  = 1 // KVM_IRQCHIP_PIC_SLAVE
	IRQChipIOAPIC    = 2 // KVM_IRQCHIP_IOAPIC
)

// PICState mirrors struct kvm_pic_state: one 8259A's registers, the start
// of IRQChip.Chip when ChipID is IRQChipPICMaster or IRQChipPICSlave.
type PICState struct {
	LastIRR                uint8 // input levels last seen, for edge detection
	IRR                    uint8 // interrupt request register: inputs waiting for service
	IMR                    uint8 // interrupt mask register
	ISR                    uint8 // in-service register
	PriorityAdd            uint8
	IRQBase                uint8 // vector of input 0 (ICW2)
	ReadRegSelect          uint8
	Poll                   uint8
	SpecialMask            uint8
	InitState              uint8
	AutoEOI                uint8
	RotateOnAutoEOI        uint8
	SpecialFullyNestedMode uint8
	Init4                  uint8
	ELCR                   uint8 // edge/level control: bit set = level-triggered
	ELCRMask               uint8
}

// PIC reads Chip as a PIC's state. Every field is a byte, so the bytes
// are the fields in order.
func (c *IRQChip) PIC() PICState {
	b := c.Chip[:]
	return PICState{
		LastIRR: b[0], IRR: b[1], IMR: b[2], ISR: b[3],
		PriorityAdd: b[4], IRQBase: b[5], ReadRegSelect: b[6], Poll: b[7],
		SpecialMask: b[8], InitState: b[9], AutoEOI: b[10], RotateOnAutoEOI: b[11],
		SpecialFullyNestedMode: b[12], Init4: b[13], ELCR: b[14], ELCRMask: b[15],
	}
}

// SetPIC writes p into Chip, for SetIRQChip.
func (c *IRQChip) SetPIC(p PICState) {
	copy(c.Chip[:], []byte{
		p.LastIRR, p.IRR, p.IMR, p.ISR,
		p.PriorityAdd, p.IRQBase, p.ReadRegSelect, p.Poll,
		p.SpecialMask, p.InitState, p.AutoEOI, p.RotateOnAutoEOI,
		p.SpecialFullyNestedMode, p.Init4, p.ELCR, p.ELCRMask,
	})
}

// PITChannelState mirrors struct kvm_pit_channel_state: one 8254 counter.
type PITChannelState struct {
	Count         uint32 // can be 65536
	LatchedCount  uint16
	CountLatched  uint8
	StatusLatched uint8
	Status        uint8
	ReadState     uint8
	WriteState    uint8
	WriteLatch    uint8
	RWMode        uint8
	Mode          uint8
	BCD           uint8
	Gate          uint8
	CountLoadTime int64
}

// PITState2 mirrors struct kvm_pit_state2: the in-kernel PIT's three
// counters and flags.
type PITState2 struct {
	Channels [3]PITChannelState
	Flags    uint32 // PITFlagsHPETLegacy, PITFlagsSpeakerDataOn
	_        [9]uint32
}

// PITState2.Flags bits (KVM_PIT_FLAGS_*).
const (
	PITFlagsHPETLegacy    = 1 << 0 // KVM_PIT_FLAGS_HPET_LEGACY
	PITFlagsSpeakerDataOn = 1 << 1 // KVM_PIT_FLAGS_SPEAKER_DATA_ON
)

// pitConfig mirrors struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

// pitSpeakerDummy is KVM_PIT_SPEAKER_DUMMY: the PIT emulates a dummy port
// 0x61 speaker, so the guest's speaker probing does not exit to the VMM.
const pitSpeakerDummy = 1

// irqLevel mirrors struct kvm_irq_level (the irq/status union as IRQ).
type irqLevel struct {
	IRQ   uint32
	Level uint32
}

// userMemoryRegion mirrors struct kvm_userspace_memory_region.
type userMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// Memory-slot flags for SetUserMemoryRegion (KVM_MEM_*).
const (
	MemLogDirtyPages = 1 << 0 // KVM_MEM_LOG_DIRTY_PAGES: track writes for GetDirtyLog
	MemReadonly      = 1 << 1 // KVM_MEM_READONLY: guest writes exit as MMIO
)

// dirtyLog mirrors struct kvm_dirty_log. Bitmap is the dirty_bitmap member
// of its pointer/u64 union; as a Go pointer the garbage collector sees it.
type dirtyLog struct {
	Slot   uint32
	_      uint32
	Bitmap *uint64
}

// irqfd mirrors struct kvm_irqfd.
type irqfd struct {
	FD         uint32
	GSI        uint32
	Flags      uint32
	ResampleFD uint32
	_          [16]uint8
}

// irqfdFlagDeassign is KVM_IRQFD_FLAG_DEASSIGN.
const irqfdFlagDeassign = 1 << 0

// ioeventfd mirrors struct kvm_ioeventfd.
type ioeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]uint8
}

// IOEventFDFlags are the KVM_IOEVENTFD_FLAG_* bits of VM.IOEventFD.
type IOEventFDFlags uint32

// IOEventFDFlags bits.
const (
	IOEventFDDatamatch IOEventFDFlags = 1 << 0 // KVM_IOEVENTFD_FLAG_DATAMATCH: signal only when the written value equals datamatch
	IOEventFDPIO       IOEventFDFlags = 1 << 1 // KVM_IOEVENTFD_FLAG_PIO: addr is an I/O port, not an MMIO address
	IOEventFDDeassign  IOEventFDFlags = 1 << 2 // KVM_IOEVENTFD_FLAG_DEASSIGN: remove a registration
)
