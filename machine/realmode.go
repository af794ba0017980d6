package machine

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/memory"
)

// The real-mode boot path (BootReal). A PC's firmware loads a boot sector
// at 0x7C00 and jumps there in real mode; govmm does the same for an ELF
// image whose segments lie in conventional memory, so that a guest can
// start where a PC starts and switch to protected and long mode itself.
// The teaching guests (images/testguest/lessons) are such images: their
// ELF symbols serve gdb and the stepper's breakpoints.

// Conventional memory: what a real-mode image may occupy, from the end of
// the BIOS data area to the extended BIOS data area.
const (
	realModeLow  = boot.RealModeIVTEnd
	realModeHigh = boot.EBDAStart
)

// maxRealModeSegments bounds the program headers looked at.
const maxRealModeSegments = 16

// RealModeSegment is one piece of a real-mode image: bytes to copy to a
// guest-physical address, and zeros after them up to MemSize.
type RealModeSegment struct {
	Addr    uint64
	Data    []byte
	MemSize uint64
}

// RealModeImage is a real-mode ELF image, parsed.
type RealModeImage struct {
	Segments []RealModeSegment
	Entry    uint64 // linear address of the first instruction
}

// ParseRealModeImage reads an ELF executable (ELFCLASS32 or 64, x86,
// little-endian) whose PT_LOAD segments all lie in conventional memory
// ([0x500, 0x9FC00): the interrupt vector table and BIOS data area below
// stay untouched) and whose entry point is in one of them. Sizes and
// offsets are checked before use (ELF specification, "Program Header").
func ParseRealModeImage(image []byte) (*RealModeImage, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("real-mode image: %w: -boot real needs an ELF file", err)
	}
	if (f.Machine != elf.EM_386 && f.Machine != elf.EM_X86_64) || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("real-mode image: ELF %v %v %v, want an x86 little-endian executable", f.Machine, f.Data, f.Type)
	}
	if len(f.Progs) > maxRealModeSegments {
		return nil, fmt.Errorf("real-mode image: %d program headers, at most %d expected", len(f.Progs), maxRealModeSegments)
	}
	img := &RealModeImage{Entry: f.Entry}
	entryFound := false
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		fileEnd := p.Off + p.Filesz
		memEnd := p.Paddr + p.Memsz
		switch {
		case p.Filesz > p.Memsz:
			return nil, fmt.Errorf("real-mode image: segment %d has p_filesz %#x > p_memsz %#x", i, p.Filesz, p.Memsz)
		case fileEnd < p.Off || fileEnd > uint64(len(image)):
			return nil, fmt.Errorf("real-mode image: segment %d's bytes [%#x, +%#x) run past the %d-byte file", i, p.Off, p.Filesz, len(image))
		case memEnd < p.Paddr || p.Paddr < uint64(realModeLow) || memEnd > uint64(realModeHigh):
			return nil, fmt.Errorf("real-mode image: segment %d at [%#x, %#x) is outside conventional memory [%#x, %#x)", i, p.Paddr, memEnd, realModeLow, realModeHigh)
		}
		img.Segments = append(img.Segments, RealModeSegment{Addr: p.Paddr, Data: image[p.Off:fileEnd], MemSize: p.Memsz})
		if f.Entry >= p.Paddr && f.Entry < memEnd {
			entryFound = true
		}
	}
	if len(img.Segments) == 0 {
		return nil, fmt.Errorf("real-mode image: no PT_LOAD segment with contents")
	}
	if !entryFound {
		return nil, fmt.Errorf("real-mode image: entry point %#x is in no loaded segment", f.Entry)
	}
	return img, nil
}

// RealModeEntry is the state the boot vCPU starts a real-mode image in:
// CS:IP at the entry (CS 0 when the entry is in the first 64 KiB, as for
// a boot sector at 0000:7C00), the other segments 0 with 64 KiB limits,
// SS:SP just below the entry, the interrupt vector table at 0, interrupts
// off, paging and protection off.
func RealModeEntry(entry uint64) *boot.EntryState {
	cs := uint16(0)
	if entry > 0xFFFF {
		cs = uint16(entry >> 4 &^ 0xFFF) // the 64 KiB window holding it
	}
	ip := entry - uint64(cs)<<4
	seg := func(sel uint16, typ uint8) boot.Segment {
		return boot.Segment{Selector: sel, Base: uint64(sel) << 4, Limit: 0xFFFF, Type: typ, Present: true, S: true}
	}
	const (
		codeType = 0xB // execute/read, accessed
		dataType = 0x3 // read/write, accessed
	)
	data := seg(0, dataType)
	return &boot.EntryState{
		RIP: ip, RSP: ip, RFLAGS: boot.RFLAGSReserved,
		CR0: boot.CR0ET,
		CS:  seg(cs, codeType), DS: data, ES: data, FS: data, GS: data, SS: data,
		// As after a reset: a TR and an LDT the CPU accepts, never used
		// in real mode (Intel SDM vol. 3, table 10-1).
		TR:  boot.Segment{Limit: 0xFFFF, Type: 0xB, Present: true},
		LDT: boot.Segment{Limit: 0xFFFF, Type: 0x2, Present: true},
		GDT: boot.DescriptorTable{Limit: 0xFFFF},
		IDT: boot.DescriptorTable{Limit: 0x3FF}, // the real-mode interrupt vector table
	}
}

// loadRealMode is loadKernel for BootReal: the image's segments into RAM,
// and the real-mode entry state. Nothing else is written: no zero page,
// no command line, no page tables.
func loadRealMode(mem *memory.Memory, c *Config, log io.Writer) (*Loaded, error) {
	img, err := ParseRealModeImage(c.Kernel)
	if err != nil {
		return nil, err
	}
	if len(c.Initrd) > 0 {
		return nil, fmt.Errorf("-boot real takes no initrd")
	}
	lo, hi := ^uint64(0), uint64(0)
	for _, s := range img.Segments {
		dst, err := mem.Slice(memory.GuestAddr(s.Addr), s.MemSize)
		if err != nil {
			return nil, fmt.Errorf("real-mode image: %w", err)
		}
		clear(dst[copy(dst, s.Data):])
		lo, hi = min(lo, s.Addr), max(hi, s.Addr+s.MemSize)
	}
	l := &Loaded{
		Path:   "real",
		Kernel: &boot.Kernel{Entry: memory.GuestAddr(img.Entry), LoadAddr: memory.GuestAddr(lo), LoadSize: hi - lo, End: memory.GuestAddr(hi)},
		Entry:  RealModeEntry(img.Entry),
	}
	if c.Verbose && log != nil {
		e := l.Entry
		fmt.Fprintf(log, "govmm: real-mode image at %v..%v, entry %04x:%04x (linear %#x)\n", l.Kernel.LoadAddr, l.Kernel.End, e.CS.Selector, e.RIP, img.Entry)
	}
	return l, nil
}
