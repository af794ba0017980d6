package boot

import (
	"fmt"

	"github.com/govmm/govmm/memory"
)

// entry64Offset is where the 64-bit entry point sits in the protected-mode
// code (boot.rst, "64-bit Boot Protocol": "the start address of loaded
// 64-bit kernel plus 0x200").
const entry64Offset = 0x200

// Kernel says where a loader put a kernel. Loaders fill it and never touch
// vCPU registers: LongModeEntry turns Entry into a register state.
type Kernel struct {
	Entry    memory.GuestAddr // the 64-bit entry point (RIP at start)
	LoadAddr memory.GuestAddr // first byte copied into RAM
	LoadSize uint64           // bytes copied (ELF: lowest to highest segment byte)
	// End is the first byte past all the kernel may use before it reads the
	// e820 map (bzImage: its runtime start + init_size; ELF: the end of the
	// highest segment, bss included). The initrd goes above it.
	End    memory.GuestAddr
	Header SetupHeader // the header for the zero page
}

// lowRAMEnd is the end of the RAM region that starts at address 0, the only
// one the boot structures, the kernel and the initrd go in.
func lowRAMEnd(mem *memory.Memory) memory.GuestAddr {
	rs := mem.Regions()
	if len(rs) == 0 || rs[0].Start != 0 {
		return 0
	}
	return rs[0].End()
}

// mib rounds n bytes up to whole MiB, for messages.
func mib(n uint64) uint64 { return (n + (1<<20 - 1)) >> 20 }

// LoadBzImage copies the protected-mode code of a bzImage into RAM. It is
// placed at pref_address when the kernel prefers an address at or above
// KernelLoad that fits in RAM, else at KernelLoad aligned up to
// kernel_alignment (a relocatable kernel) or at KernelLoad. RAM must hold the
// kernel's whole runtime footprint (see SetupHeader.RuntimeStart), or the
// error says how much RAM to give.
func LoadBzImage(mem *memory.Memory, image []byte) (*Kernel, error) {
	bz, err := ParseBzImage(image)
	if err != nil {
		return nil, err
	}
	h := bz.Header
	n := uint64(len(bz.Kernel))
	top := uint64(lowRAMEnd(mem))
	load := uint64(KernelLoad)
	if h.Relocatable {
		a := uint64(h.KernelAlignment)
		load = (load + a - 1) &^ (a - 1) // KernelLoad and a ≤ 4 GiB: no overflow
	}
	if p := h.PrefAddress; p >= uint64(KernelLoad) && p <= top && n <= top-p {
		load = p
	}
	start, ok := h.RuntimeStart(load)
	end := start + uint64(h.InitSize)
	if !ok || end < start {
		return nil, fmt.Errorf("bzImage: runtime start for load address %#x wraps (pref_address %#x, kernel_alignment %#x): the header is corrupt", load, h.PrefAddress, h.KernelAlignment)
	}
	end = max(end, load+n)
	if end > top {
		return nil, fmt.Errorf("bzImage: the kernel needs RAM up to %#x (runtime start %#x + init_size %#x) but RAM below the MMIO hole ends at %#x: give at least %d MiB", end, start, h.InitSize, top, mib(end))
	}
	mem.Populate(memory.GuestAddr(load), uint64(len(bz.Kernel))) // one call, not a fault per page
	if err := mem.WriteAt(bz.Kernel, memory.GuestAddr(load)); err != nil {
		return nil, fmt.Errorf("bzImage: copying %d bytes of kernel to %#x: %w", n, load, err)
	}
	return &Kernel{
		Entry:    memory.GuestAddr(load + entry64Offset),
		LoadAddr: memory.GuestAddr(load),
		LoadSize: n,
		End:      memory.GuestAddr(end),
		Header:   h,
	}, nil
}
