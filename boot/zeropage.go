package boot

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/govmm/govmm/memory"
)

// Offsets in struct boot_params, the "zero page"
// (Documentation/arch/x86/zero-page.rst).
const (
	zpACPIRSDPAddr    = 0x070 // u64 acpi_rsdp_addr
	zpExtRamdiskImage = 0x0C0 // u32 ext_ramdisk_image
	zpExtRamdiskSize  = 0x0C4 // u32 ext_ramdisk_size
	zpExtCmdLinePtr   = 0x0C8 // u32 ext_cmd_line_ptr
	zpE820Entries     = 0x1E8 // u8 e820_entries
	zpE820Table       = 0x2D0 // struct boot_e820_entry[E820MaxEntries]
	e820EntrySize     = 20    // u64 addr, u64 size, u32 type (packed)
)

// E820MaxEntries is the number of slots in the zero page's e820 table.
const E820MaxEntries = 128

// Loader identity written to type_of_loader: 0xFF is "undefined" in
// boot.rst's list of assigned loader ids.
const typeOfLoaderUndefined = 0xFF

// heapEndPtr is heap_end_ptr: the end of the setup heap minus 0x200, from
// the start of the real-mode code. The real-mode code does not run on the
// 64-bit entry, so any in-bounds value does; this is the usual 0xfe00.
const heapEndPtr = 0xfe00

// E820Type is the type of an e820 memory-map entry.
type E820Type uint32

// The e820 types Linux knows (ACPI spec, "Address Range Types").
const (
	E820RAM      E820Type = 1
	E820Reserved E820Type = 2
	E820ACPI     E820Type = 3
	E820NVS      E820Type = 4
	E820Unusable E820Type = 5
)

// E820Entry is one range of the guest's physical memory map.
type E820Entry struct {
	Addr uint64
	Size uint64
	Type E820Type
}

func (e E820Entry) end() uint64 { return e.Addr + e.Size }

// E820Map computes the memory map the guest sees: every RAM region of mem
// as usable RAM, except [EBDAStart, HighMemStart) (the EBDA, VGA window and
// ROMs), which is reserved, followed by extra (such as a reserved PCIe ECAM
// window). Entries are sorted; overlaps are an error.
func E820Map(mem *memory.Memory, extra ...E820Entry) ([]E820Entry, error) {
	var out []E820Entry
	add := func(start, end uint64, t E820Type) {
		if end > start {
			out = append(out, E820Entry{Addr: start, Size: end - start, Type: t})
		}
	}
	legacyUsed := false
	for _, r := range mem.Regions() {
		start, end := uint64(r.Start), uint64(r.End())
		lo, hi := uint64(EBDAStart), uint64(HighMemStart)
		if start < hi && lo < end {
			legacyUsed = true
		}
		add(start, min(end, lo), E820RAM)
		add(max(start, hi), end, E820RAM)
	}
	if legacyUsed {
		add(uint64(EBDAStart), uint64(HighMemStart), E820Reserved)
	}
	for _, e := range extra {
		if e.Size == 0 || e.end() < e.Addr {
			return nil, fmt.Errorf("e820: extra entry at %#x of %#x bytes is empty or wraps: fix the caller's table", e.Addr, e.Size)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	for i := 1; i < len(out); i++ {
		if a, b := out[i-1], out[i]; a.end() > b.Addr {
			return nil, fmt.Errorf("e820: [%#x, %#x) type %d overlaps [%#x, %#x) type %d: an extra entry covers RAM or another entry", a.Addr, a.end(), a.Type, b.Addr, b.end(), b.Type)
		}
	}
	if len(out) > E820MaxEntries {
		return nil, fmt.Errorf("e820: %d entries, the zero page holds at most %d: merge the extra entries", len(out), E820MaxEntries)
	}
	return out, nil
}

// BootParams is what the zero page tells the kernel.
type BootParams struct {
	Header      SetupHeader      // copied to 0x1F1, then the loader fields below are set
	Cmdline     string           // without the terminating NUL
	CmdlineAddr memory.GuestAddr // where WriteBootParams puts Cmdline
	InitrdAddr  memory.GuestAddr // 0 with InitrdSize 0: no initrd
	InitrdSize  uint64
	E820        []E820Entry
	ACPIRSDP    memory.GuestAddr // 0: the kernel scans for the RSDP itself
}

// Marshal encodes p as the 4 KiB struct boot_params.
func (p *BootParams) Marshal() ([]byte, error) {
	if n := uint64(len(p.Cmdline)); n > uint64(p.Header.CmdlineSize) {
		return nil, fmt.Errorf("zero page: command line is %d bytes, the kernel accepts at most %d (cmdline_size): shorten it", n, p.Header.CmdlineSize)
	}
	if n := len(p.Cmdline) + 1; n > CmdlineMax {
		return nil, fmt.Errorf("zero page: command line is %d bytes with its NUL, the area at %v holds %d: shorten it", n, CmdlineAddr, CmdlineMax)
	}
	if len(p.E820) > E820MaxEntries {
		return nil, fmt.Errorf("zero page: %d e820 entries, at most %d fit", len(p.E820), E820MaxEntries)
	}
	if p.InitrdSize > 0xffff_ffff {
		return nil, fmt.Errorf("zero page: initrd of %d bytes, the boot protocol's sizes are 32-bit (4 GiB)", p.InitrdSize)
	}
	b := make([]byte, ZeroPageSize)
	le := binary.LittleEndian
	p.Header.put(b)
	// Fields a boot loader writes (boot.rst, "DETAILS OF HEADER FIELDS").
	b[offTypeOfLoader] = typeOfLoaderUndefined
	b[offLoadFlags] = p.Header.LoadFlags | LoadedHigh | CanUseHeap
	le.PutUint16(b[offHeapEndPtr:], heapEndPtr)
	le.PutUint32(b[offCmdLinePtr:], uint32(p.CmdlineAddr))
	le.PutUint32(b[zpExtCmdLinePtr:], uint32(p.CmdlineAddr>>32))
	le.PutUint32(b[offRamdiskImage:], uint32(p.InitrdAddr))
	le.PutUint32(b[zpExtRamdiskImage:], uint32(p.InitrdAddr>>32))
	le.PutUint32(b[offRamdiskSize:], uint32(p.InitrdSize))
	le.PutUint32(b[zpExtRamdiskSize:], 0) // size checked to fit in 32 bits above
	le.PutUint64(b[zpACPIRSDPAddr:], uint64(p.ACPIRSDP))
	b[zpE820Entries] = uint8(len(p.E820))
	for i, e := range p.E820 {
		o := zpE820Table + i*e820EntrySize
		le.PutUint64(b[o:], e.Addr)
		le.PutUint64(b[o+8:], e.Size)
		le.PutUint32(b[o+16:], uint32(e.Type))
	}
	return b, nil
}

// WriteBootParams writes the command line (NUL-terminated) at p.CmdlineAddr
// and the zero page at ZeroPageAddr.
func WriteBootParams(mem *memory.Memory, p *BootParams) error {
	zp, err := p.Marshal()
	if err != nil {
		return err
	}
	if err := mem.WriteAt(append([]byte(p.Cmdline), 0), p.CmdlineAddr); err != nil {
		return fmt.Errorf("writing the command line at %v: %w", p.CmdlineAddr, err)
	}
	if err := mem.WriteAt(zp, ZeroPageAddr); err != nil {
		return fmt.Errorf("writing the zero page at %v: %w", ZeroPageAddr, err)
	}
	return nil
}

// put writes the header into a zero page: the raw bytes from the image
// first, then every named field at its offset.
func (h *SetupHeader) put(b []byte) {
	copy(b[hdrStart:hdrMaxEnd], h.Raw)
	le := binary.LittleEndian
	b[offSetupSects] = h.SetupSects
	le.PutUint16(b[offBootFlag:], bootFlagMagic)
	le.PutUint32(b[offHeaderMagic:], headerMagic)
	le.PutUint16(b[offVersion:], h.Version)
	b[offLoadFlags] = h.LoadFlags
	le.PutUint32(b[offCode32Start:], h.Code32Start)
	le.PutUint32(b[offInitrdAddrMax:], h.InitrdAddrMax)
	le.PutUint32(b[offKernelAlignment:], h.KernelAlignment)
	if h.Relocatable {
		b[offRelocatable] = 1
	}
	b[offMinAlignment] = h.MinAlignment
	le.PutUint16(b[offXLoadFlags:], h.XLoadFlags)
	le.PutUint32(b[offCmdlineSize:], h.CmdlineSize)
	le.PutUint32(b[offPayloadOffset:], h.PayloadOffset)
	le.PutUint32(b[offPayloadLength:], h.PayloadLength)
	le.PutUint64(b[offPrefAddress:], h.PrefAddress)
	le.PutUint32(b[offInitSize:], h.InitSize)
	le.PutUint32(b[offHandoverOffset:], h.HandoverOffset)
	le.PutUint32(b[offKernelInfoOff:], h.KernelInfoOffset)
}
