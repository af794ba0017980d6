package memory

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Layout of RAM around the 32-bit MMIO hole: RAM above HoleStart is moved to
// start at 4 GiB so that devices (PCI, the IOAPIC, the local APIC) have the
// top of the 32-bit space to themselves.
const (
	HoleStart GuestAddr = 0xC000_0000   // 3 GiB: first address of the MMIO hole
	HoleEnd   GuestAddr = 0x1_0000_0000 // 4 GiB: first RAM address above the hole
)

// New maps size bytes of anonymous, lazily backed memory and lays it out as
// guest RAM starting at address 0, split around the MMIO hole if it reaches
// HoleStart. Nothing is touched: pages cost host memory when first used.
func New(size uint64) (*Memory, error) {
	if size == 0 || size%uint64(unix.Getpagesize()) != 0 {
		return nil, fmt.Errorf("guest RAM size %#x must be a non-zero multiple of the page size", size)
	}
	host, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mapping %d MiB of guest RAM: %w", size>>20, err)
	}
	regions := SplitAroundHole(host)
	m, err := FromRegions(regions...)
	if err != nil {
		_ = unix.Munmap(host) // report the layout error, which caused this
		return nil, err
	}
	m.unmap = func() error { return unix.Munmap(host) }
	return m, nil
}

// SplitAroundHole lays host bytes out as guest RAM from address 0, moving
// what would fall in [HoleStart, HoleEnd) to start at HoleEnd.
func SplitAroundHole(host []byte) []Region {
	low := uint64(HoleStart)
	if uint64(len(host)) <= low {
		return []Region{{Start: 0, Host: host}}
	}
	return []Region{
		{Start: 0, Host: host[:low:low]},
		{Start: HoleEnd, Host: host[low:]},
	}
}
