package boot

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Control-register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1).
const (
	CR0PE   uint64 = 1 << 0  // protection enable
	CR0ET   uint64 = 1 << 4  // extension type (always 1 on modern CPUs)
	CR0PG   uint64 = 1 << 31 // paging
	CR4PAE  uint64 = 1 << 5  // physical address extension, required by long mode
	EFERLME uint64 = 1 << 8  // long mode enable
	EFERLMA uint64 = 1 << 10 // long mode active
	// RFLAGSReserved is bit 1 of RFLAGS, which always reads as 1; with IF
	// clear, interrupts are off as the 64-bit boot protocol requires.
	RFLAGSReserved uint64 = 1 << 1
)

// Page-table entry bits (Intel SDM vol. 3, 4.5).
const (
	ptePresent  uint64 = 1 << 0
	pteWritable uint64 = 1 << 1
	ptePageSize uint64 = 1 << 7 // in a PD entry: maps a 2 MiB page
	hugePage    uint64 = 2 << 20
)

// Segment is a segment register as the CPU caches it: selector plus the
// descriptor fields. The machine package converts it to KVM's layout.
type Segment struct {
	Selector uint16
	Base     uint64
	Limit    uint32 // in bytes (already scaled by G), as KVM wants it
	Type     uint8  // 4-bit type field
	Present  bool
	DPL      uint8
	DB       bool // default operation size 32 bits (0 for 64-bit code)
	S        bool // code/data (true) or system (false)
	L        bool // 64-bit code segment
	G        bool // limit counts 4 KiB units
	AVL      bool
	Unusable bool // the register holds no usable segment (the LDT at entry)
}

// DescriptorTable is a GDTR or IDTR.
type DescriptorTable struct {
	Base  uint64
	Limit uint16
}

// EntryState is the vCPU state at the kernel's 64-bit entry.
type EntryState struct {
	RIP, RSP, RSI, RFLAGS uint64
	CR0, CR3, CR4, EFER   uint64
	CS, DS, ES, FS, GS    Segment
	SS, TR, LDT           Segment
	GDT, IDT              DescriptorTable
}

// Boot segments: flat 4 GiB, as "64-bit Boot Protocol" in boot.rst asks
// (__BOOT_CS execute/read, __BOOT_DS read/write).
var (
	bootCode = Segment{Selector: BootCS, Limit: 0xffff_ffff, Type: 0xb, Present: true, S: true, L: true, G: true}
	bootData = Segment{Selector: BootDS, Limit: 0xffff_ffff, Type: 0x3, Present: true, S: true, DB: true, G: true}
	bootTSS  = Segment{Selector: BootTSS, Base: uint64(BootTSSAddr), Limit: BootTSSSize - 1, Type: 0xb, Present: true}
	noLDT    = Segment{Type: 0x2, Unusable: true}
)

// descriptor encodes the low 8 bytes of a segment descriptor (Intel SDM
// vol. 3, 3.4.5). A system descriptor in long mode takes 16 bytes; the high
// 8 hold bits 63:32 of the base.
func (s Segment) descriptor() uint64 {
	limit := uint64(s.Limit)
	if s.G {
		limit >>= 12
	}
	flag := func(b bool, bit uint) uint64 {
		if b {
			return 1 << bit
		}
		return 0
	}
	d := limit & 0xffff
	d |= (s.Base & 0xff_ffff) << 16
	d |= uint64(s.Type&0xf) << 40
	d |= flag(s.S, 44)
	d |= uint64(s.DPL&3) << 45
	d |= flag(s.Present, 47)
	d |= (limit >> 16 & 0xf) << 48
	d |= flag(s.AVL, 52)
	d |= flag(s.L, 53)
	d |= flag(s.DB, 54)
	d |= flag(s.G, 55)
	d |= (s.Base >> 24 & 0xff) << 56
	return d
}

// GDT returns the boot GDT's bytes: null, unused, __BOOT_CS, __BOOT_DS, and
// the 16-byte TSS descriptor.
func GDT() []byte {
	b := make([]byte, GDTSize)
	le := binary.LittleEndian
	le.PutUint64(b[BootCS:], bootCode.descriptor())
	le.PutUint64(b[BootDS:], bootData.descriptor())
	le.PutUint64(b[BootTSS:], bootTSS.descriptor())
	le.PutUint64(b[BootTSS+8:], bootTSS.Base>>32)
	return b
}

// PageTables returns the boot page tables, PML4 through the last page
// directory, as one block to write at PML4Addr: the first IdentityMapSize
// bytes of the address space identity-mapped with 2 MiB pages.
func PageTables() []byte {
	b := make([]byte, PageTablesEnd-PML4Addr)
	le := binary.LittleEndian
	at := func(a memory.GuestAddr) []byte { return b[a-PML4Addr:] }
	le.PutUint64(at(PML4Addr), uint64(PDPTAddr)|ptePresent|pteWritable)
	for i := range uint64(PDCount) {
		pd := PDAddr + memory.GuestAddr(i*PageSize)
		le.PutUint64(at(PDPTAddr)[i*8:], uint64(pd)|ptePresent|pteWritable)
		for j := range uint64(512) {
			page := (i*512 + j) * hugePage
			le.PutUint64(at(pd)[j*8:], page|ptePresent|pteWritable|ptePageSize)
		}
	}
	return b
}

// LongModeEntry writes the boot GDT, a zeroed TSS and the identity page
// tables into guest memory and returns the register state for the 64-bit
// boot protocol: long mode with paging, CS=__BOOT_CS, DS/ES/SS=__BOOT_DS,
// interrupts off, RSI = the zero page, RIP = entry.
func LongModeEntry(mem *memory.Memory, entry uint64, zeroPage memory.GuestAddr) (*EntryState, error) {
	if entry >= IdentityMapSize || uint64(zeroPage) >= IdentityMapSize {
		return nil, fmt.Errorf("entry %#x or zero page %v lies outside the %d GiB the boot page tables map", entry, zeroPage, IdentityMapSize>>30)
	}
	writes := []struct {
		what string
		b    []byte
		at   memory.GuestAddr
	}{
		{"GDT", GDT(), GDTAddr},
		{"boot TSS", make([]byte, BootTSSSize), BootTSSAddr},
		{"page tables", PageTables(), PML4Addr},
	}
	for _, w := range writes {
		if err := mem.WriteAt(w.b, w.at); err != nil {
			return nil, fmt.Errorf("writing the %s at %v: %w (guest RAM must start at address 0)", w.what, w.at, err)
		}
	}
	return &EntryState{
		RIP:    entry,
		RSP:    uint64(StackTop),
		RSI:    uint64(zeroPage),
		RFLAGS: RFLAGSReserved,
		CR0:    CR0PE | CR0ET | CR0PG,
		CR3:    uint64(PML4Addr),
		CR4:    CR4PAE,
		EFER:   EFERLME | EFERLMA,
		CS:     bootCode,
		DS:     bootData,
		ES:     bootData,
		FS:     bootData,
		GS:     bootData,
		SS:     bootData,
		TR:     bootTSS,
		LDT:    noLDT,
		GDT:    DescriptorTable{Base: uint64(GDTAddr), Limit: GDTSize - 1},
		IDT:    DescriptorTable{}, // zero limit: no IDT until the kernel loads one
	}, nil
}
