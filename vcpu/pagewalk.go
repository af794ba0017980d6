package vcpu

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Control-register and page-table bits the walker reads (Intel SDM vol. 3,
// chapter 4 "Paging").
const (
	cr0PG      = 1 << 31
	cr4PAE     = 1 << 5
	cr4PSE     = 1 << 4
	cr4LA57    = 1 << 12
	eferLMA    = 1 << 10
	ptePresent = 1 << 0
	ptePS      = 1 << 7 // large page at this level
)

// Paging is the part of a vCPU's state that decides how it translates
// linear addresses.
type Paging struct {
	CR0, CR3, CR4, EFER uint64
}

// Translate turns a linear address into a guest-physical one by walking the
// guest's page tables the way the CPU would (no permission checks). It
// handles paging off, 32-bit, PAE, 4-level and 5-level paging with large
// pages.
func Translate(mem *memory.Memory, p Paging, linear uint64) (memory.GuestAddr, error) {
	if p.CR0&cr0PG == 0 {
		return memory.GuestAddr(linear), nil
	}
	read := func(addr uint64, size int) (uint64, error) {
		b, err := mem.Slice(memory.GuestAddr(addr), uint64(size))
		if err != nil {
			return 0, fmt.Errorf("page-table entry: %w", err)
		}
		if size == 4 {
			return uint64(binary.LittleEndian.Uint32(b)), nil
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	switch {
	case p.EFER&eferLMA != 0:
		levels := 4
		if p.CR4&cr4LA57 != 0 {
			levels = 5
		}
		return walk(read, p.CR3&^0xFFF, linear, levels, 9, 8, 0x000F_FFFF_FFFF_F000)
	case p.CR4&cr4PAE != 0:
		// The PDPT has 4 entries indexed by bits 31:30; below it two
		// levels of 9 bits, like long mode.
		pdpte, err := read(p.CR3&^0x1F+(linear>>30&3)*8, 8)
		if err != nil {
			return 0, err
		}
		if pdpte&ptePresent == 0 {
			return 0, fmt.Errorf("linear %#x: PDPTE not present", linear)
		}
		return walk(read, pdpte&0x000F_FFFF_FFFF_F000, linear&0x3FFF_FFFF, 2, 9, 8, 0x000F_FFFF_FFFF_F000)
	default:
		if p.CR4&cr4PSE == 0 {
			return walkNoLarge(read, p.CR3&^0xFFF, linear)
		}
		return walk(read, p.CR3&^0xFFF, linear&0xFFFF_FFFF, 2, 10, 4, 0xFFFF_F000)
	}
}

// walk descends levels tables of 2^bits entries of size bytes each.
func walk(read func(uint64, int) (uint64, error), table, linear uint64, levels int, bits uint, size int, addrMask uint64) (memory.GuestAddr, error) {
	for level := levels; level >= 1; level-- {
		shift := 12 + bits*uint(level-1)
		index := linear >> shift & (1<<bits - 1)
		e, err := read(table+index*uint64(size), size)
		if err != nil {
			return 0, err
		}
		if e&ptePresent == 0 {
			return 0, fmt.Errorf("linear %#x: not present at level %d", linear, level)
		}
		if level == 1 || (e&ptePS != 0 && level <= 3) {
			pageMask := uint64(1)<<shift - 1
			return memory.GuestAddr(e&addrMask&^pageMask | linear&pageMask), nil
		}
		table = e & addrMask
	}
	panic("unreachable: level 1 always returns")
}

// walkNoLarge is 32-bit paging with CR4.PSE clear: a PS bit means nothing.
func walkNoLarge(read func(uint64, int) (uint64, error), dir, linear uint64) (memory.GuestAddr, error) {
	pde, err := read(dir+(linear>>22&0x3FF)*4, 4)
	if err != nil {
		return 0, err
	}
	if pde&ptePresent == 0 {
		return 0, fmt.Errorf("linear %#x: PDE not present", linear)
	}
	pte, err := read(pde&0xFFFF_F000+(linear>>12&0x3FF)*4, 4)
	if err != nil {
		return 0, err
	}
	if pte&ptePresent == 0 {
		return 0, fmt.Errorf("linear %#x: PTE not present", linear)
	}
	return memory.GuestAddr(pte&0xFFFF_F000 | linear&0xFFF), nil
}
