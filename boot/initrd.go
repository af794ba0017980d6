package boot

import (
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Initrd says where an initial ramdisk went.
type Initrd struct {
	Addr memory.GuestAddr
	Size uint64
}

// PlaceInitrd chooses where an initrd of size bytes goes: page-aligned, as
// high as it fits below the lowest of initrd_addr_max+1, the end of the RAM
// region at address 0, and 4 GiB, and above k.End. (boot.rst, field
// "initrd_addr_max": the highest address the initrd may occupy.)
func PlaceInitrd(mem *memory.Memory, k *Kernel, size uint64) (memory.GuestAddr, error) {
	ramTop := uint64(lowRAMEnd(mem))
	limit := min(uint64(k.Header.InitrdAddrMax)+1, ramTop, uint64(MMIOHoleEnd))
	floor := (uint64(k.End) + PageSize - 1) &^ (PageSize - 1)
	if size <= limit && limit-size >= floor {
		return memory.GuestAddr((limit - size) &^ (PageSize - 1)), nil
	}
	need := floor + size
	if hard := min(uint64(k.Header.InitrdAddrMax)+1, uint64(MMIOHoleStart)); need < floor || need > hard {
		return 0, fmt.Errorf("initrd of %d MiB does not fit between the kernel's end %#x and %#x (initrd_addr_max %#x, RAM below the MMIO hole ends at %#x): use a smaller initrd",
			mib(size), floor, limit, k.Header.InitrdAddrMax, ramTop)
	}
	return 0, fmt.Errorf("initrd of %d MiB does not fit below %#x with %d MiB of RAM: give at least %d MiB",
		mib(size), limit, mem.Size()>>20, mib(need))
}

// LoadInitrd places the initrd with PlaceInitrd and copies it there.
func LoadInitrd(mem *memory.Memory, k *Kernel, initrd []byte) (*Initrd, error) {
	n := uint64(len(initrd))
	addr, err := PlaceInitrd(mem, k, n)
	if err != nil {
		return nil, err
	}
	mem.Populate(addr, uint64(len(initrd))) // one call, not a fault per page
	if err := mem.WriteAt(initrd, addr); err != nil {
		return nil, fmt.Errorf("copying the initrd to %v: %w", addr, err)
	}
	return &Initrd{Addr: addr, Size: n}, nil
}
