package boot

import (
	"bytes"
	"debug/elf"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// maxELFSegments bounds the program headers LoadELF looks at; a vmlinux has
// a handful.
const maxELFSegments = 64

// LoadELF loads an uncompressed vmlinux: an ELF64 x86-64 executable whose
// PT_LOAD segments go to their physical addresses (p_paddr), with the bytes
// past p_filesz up to p_memsz (the bss) zeroed. Entry is e_entry, translated
// from virtual to physical through the segment that holds it if it is a
// virtual address. Header is DefaultSetupHeader(); the fast path replaces
// it with the header of the bzImage the vmlinux came from.
func LoadELF(mem *memory.Memory, image []byte) (*Kernel, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("vmlinux: %w: not an ELF file", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("vmlinux: ELF is %v %v %v, want ELFCLASS64 EM_X86_64 little-endian: not an x86-64 kernel", f.Class, f.Machine, f.Data)
	}
	if f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("vmlinux: ELF type %v, want ET_EXEC: not a kernel image", f.Type)
	}
	if len(f.Progs) > maxELFSegments {
		return nil, fmt.Errorf("vmlinux: %d program headers, at most %d expected: the file is corrupt", len(f.Progs), maxELFSegments)
	}
	size := uint64(len(image))
	top := uint64(lowRAMEnd(mem))
	var lo, hi uint64 = ^uint64(0), 0
	entry, entryFound := f.Entry, false
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		fileEnd := p.Off + p.Filesz
		memEnd := p.Paddr + p.Memsz
		switch {
		case p.Filesz > p.Memsz:
			return nil, fmt.Errorf("vmlinux: segment %d has p_filesz %#x > p_memsz %#x: the file is corrupt", i, p.Filesz, p.Memsz)
		case fileEnd < p.Off || fileEnd > size:
			return nil, fmt.Errorf("vmlinux: segment %d file range p_offset %#x + p_filesz %#x runs past the %d-byte file: the file is truncated", i, p.Off, p.Filesz, size)
		case memEnd < p.Paddr || memEnd > top:
			return nil, fmt.Errorf("vmlinux: segment %d at physical [%#x, %#x) is not in RAM below %#x: give at least %d MiB of RAM", i, p.Paddr, memEnd, top, mib(memEnd))
		case p.Paddr < uint64(HighMemStart):
			return nil, fmt.Errorf("vmlinux: segment %d at physical %#x lies below 1 MiB, over the boot structures: not a loadable kernel", i, p.Paddr)
		}
		dst, err := mem.Slice(memory.GuestAddr(p.Paddr), p.Memsz)
		if err != nil {
			return nil, fmt.Errorf("vmlinux: segment %d: %w", i, err)
		}
		mem.Populate(memory.GuestAddr(p.Paddr), p.Filesz) // one call, not a fault per page
		n := uint64(copy(dst, image[p.Off:fileEnd]))
		// The BSS: fresh RAM is zero already, and Zero keeps it unfaulted.
		if err := mem.Zero(memory.GuestAddr(p.Paddr+n), p.Memsz-n); err != nil {
			return nil, fmt.Errorf("vmlinux: segment %d: %w", i, err)
		}
		lo, hi = min(lo, p.Paddr), max(hi, memEnd)
		if !entryFound {
			if f.Entry >= p.Paddr && f.Entry-p.Paddr < p.Memsz {
				entry, entryFound = f.Entry, true
			} else if f.Entry >= p.Vaddr && f.Entry-p.Vaddr < p.Memsz {
				entry, entryFound = f.Entry-p.Vaddr+p.Paddr, true
			}
		}
	}
	if hi == 0 {
		return nil, fmt.Errorf("vmlinux: no PT_LOAD segment with contents: not a kernel image")
	}
	if !entryFound {
		return nil, fmt.Errorf("vmlinux: e_entry %#x is in no loaded segment, physically or virtually: the file is corrupt", f.Entry)
	}
	return &Kernel{
		Entry:    memory.GuestAddr(entry),
		LoadAddr: memory.GuestAddr(lo),
		LoadSize: hi - lo,
		End:      memory.GuestAddr(hi),
		Header:   DefaultSetupHeader(),
	}, nil
}
