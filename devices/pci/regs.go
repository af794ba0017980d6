package pci

// Configuration-space registers of a type 0 (device) header, PCI Local Bus
// Specification 3.0, 6.1 (offsets in bytes).
const (
	RegVendorID      = 0x00 // 16 bits, read-only
	RegDeviceID      = 0x02 // 16 bits, read-only
	RegCommand       = 0x04 // 16 bits
	RegStatus        = 0x06 // 16 bits
	RegRevision      = 0x08 // 8 bits, read-only
	RegClass         = 0x09 // 24 bits: programming interface, subclass, base class
	RegCacheLineSize = 0x0C // 8 bits, read-write scratch
	RegLatencyTimer  = 0x0D // 8 bits, read-write scratch
	RegHeaderType    = 0x0E // 8 bits, read-only
	RegBAR0          = 0x10 // six 32-bit base address registers
	RegSubsysVendor  = 0x2C // 16 bits, read-only
	RegSubsysID      = 0x2E // 16 bits, read-only
	RegROMBase       = 0x30 // expansion ROM base: 0, no ROM
	RegCapPtr        = 0x34 // 8 bits: offset of the first capability
	RegInterruptLine = 0x3C // 8 bits, read-write: what firmware told the OS
	RegInterruptPin  = 0x3D // 8 bits, read-only: 0 none, 1-4 INTA-INTD
)

// Sizes of the configuration space.
const (
	// HeaderSize is the standard header; capabilities start after it.
	HeaderSize = 0x40
	// ConfigSize is the space configuration mechanism #1 reaches.
	ConfigSize = 0x100
	// ExtConfigSize is one function's window in ECAM (PCI Express 4.0,
	// 7.2.2); govmm's functions have nothing past ConfigSize there, so
	// the extended space reads as zeros (no extended capabilities).
	ExtConfigSize = 0x1000
	// BARCount is how many BARs a type 0 header has.
	BARCount = 6
)

// Command register bits.
const (
	CmdIO          = 1 << 0  // I/O space decoding
	CmdMemory      = 1 << 1  // memory space decoding
	CmdBusMaster   = 1 << 2  // the function may start DMA (and send MSIs)
	CmdParityErr   = 1 << 6  // parity error response
	CmdSERR        = 1 << 8  // SERR# enable
	CmdINTxDisable = 1 << 10 // the function must not assert INTx

	// cmdWritable are the bits the guest can set.
	cmdWritable = CmdIO | CmdMemory | CmdBusMaster | CmdParityErr | CmdSERR | CmdINTxDisable
)

// Status register bits.
const (
	StatusINTx    = 1 << 3 // read-only: the function's INTx is asserted
	StatusCapList = 1 << 4 // read-only: RegCapPtr is valid

	// statusW1C are the error bits, cleared by writing 1 (bits 8, 11-15).
	statusW1C = 0xF900
)

// BAR register bits (6.2.5.1).
const (
	barIOSpace      = 1 << 0 // bit 0: an I/O BAR
	barMem64        = 2 << 1 // bits 2:1 = 10: a 64-bit memory BAR
	barPrefetchable = 1 << 3
	barMemFlagBits  = 0xF // a memory BAR's low bits are its type, not address
	barIOFlagBits   = 0x3
)

// Header type and class codes govmm uses.
const (
	HeaderTypeDevice = 0x00 // type 0, single function

	ClassHostBridge = 0x06_00_00 // bridge, host bridge
	ClassOther      = 0xFF_00_00 // device does not fit a defined class
)

// Capability IDs (PCI Code and ID Assignment Specification).
const (
	CapIDVendor = 0x09 // vendor-specific
	CapIDMSIX   = 0x11 // MSI-X
)

// INTx pins as the Interrupt Pin register numbers them.
const (
	PinNone = 0
	PinA    = 1
	PinB    = 2
	PinC    = 3
	PinD    = 4
)
