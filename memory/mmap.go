package memory

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Layout of RAM around the 32-bit MMIO hole: RAM above HoleStart is moved to
// start at 4 GiB so that devices (PCI, the IOAPIC, the local APIC) have the
// top of the 32-bit space to themselves.
const (
	HoleStart GuestAddr = 0xC000_0000   // 3 GiB: first address of the MMIO hole
	HoleEnd   GuestAddr = 0x1_0000_0000 // 4 GiB: first RAM address above the hole
)

// New maps size bytes of lazily backed memory and lays it out as guest RAM
// starting at address 0, split around the MMIO hole if it reaches
// HoleStart. Nothing is touched: pages cost host memory when first used.
//
// The memory is a memfd mapped MAP_SHARED: File returns it, so that a
// snapshot can map or copy guest RAM through the file, and a backend
// process could be handed it. Where the kernel has no memfd_create (before
// Linux 3.17), RAM is anonymous private memory and File returns nil.
func New(size uint64) (*Memory, error) {
	if size == 0 || size%uint64(unix.Getpagesize()) != 0 {
		return nil, fmt.Errorf("guest RAM size %#x must be a non-zero multiple of the page size", size)
	}
	file, err := newRAMFile(size)
	if err != nil {
		return nil, err
	}
	fd, flags := -1, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE
	if file != nil {
		fd, flags = int(file.Fd()), unix.MAP_SHARED|unix.MAP_NORESERVE
	}
	host, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mapping %d MiB of guest RAM: %w", size>>20, err), closeFile(file))
	}
	regions := SplitAroundHole(host)
	m, err := FromRegions(regions...)
	if err != nil {
		_ = unix.Munmap(host) // report the layout error, which caused this
		return nil, errors.Join(err, closeFile(file))
	}
	m.file = file
	m.zeroAdvice = unix.MADV_DONTNEED
	if file != nil {
		m.zeroAdvice = unix.MADV_REMOVE // a shared mapping: free the memfd's pages
	}
	m.unmap = func() error { return errors.Join(unix.Munmap(host), closeFile(file)) }
	return m, nil
}

// newRAMFile makes the memfd behind guest RAM, size bytes long (sparse:
// ftruncate allocates nothing). nil, nil means RAM is to be anonymous
// memory: the kernel has no memfd, or the file-size limit (RLIMIT_FSIZE,
// which govmm jail -fsize sets to bound the files govmm writes) is below
// RAM's size, since the kernel counts a memfd as a file.
func newRAMFile(size uint64) (*os.File, error) {
	fd, err := unix.MemfdCreate("govmm-guest-ram", unix.MFD_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create for guest RAM: %w", err)
	}
	f := os.NewFile(uintptr(fd), "govmm-guest-ram")
	if err := unix.Ftruncate(fd, int64(size)); errors.Is(err, unix.EFBIG) {
		return nil, f.Close()
	} else if err != nil {
		return nil, errors.Join(fmt.Errorf("sizing the guest RAM memfd to %d MiB: %w", size>>20, err), f.Close())
	}
	return f, nil
}

func closeFile(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
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
