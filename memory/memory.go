// Package memory is the guest's physical memory: the regions of RAM the VMM
// maps, the guest-physical address type, and bounds-checked access to them.
//
// RAM is mapped lazily (MAP_NORESERVE): the host gives a page only when the
// guest or the VMM first touches it, so the VMM's resident size does not grow
// with the size of guest RAM.
package memory

import (
	"errors"
	"fmt"
	"os"
	"sort"
)

// GuestAddr is a guest-physical address.
type GuestAddr uint64

func (a GuestAddr) String() string { return fmt.Sprintf("%#x", uint64(a)) }

// Add returns a+n, or false if that wraps past the end of the address space.
func (a GuestAddr) Add(n uint64) (GuestAddr, bool) {
	s := uint64(a) + n
	return GuestAddr(s), s >= uint64(a)
}

// Region is one contiguous piece of guest RAM backed by host memory.
type Region struct {
	Start GuestAddr // first guest-physical byte
	Host  []byte    // the host mapping; len(Host) is the region's size
}

// Size is the number of bytes in the region.
func (r Region) Size() uint64 { return uint64(len(r.Host)) }

// End is the first guest-physical address past the region.
func (r Region) End() GuestAddr { return r.Start + GuestAddr(len(r.Host)) }

// ErrOutOfRange is wrapped by every access that falls outside guest RAM.
var ErrOutOfRange = errors.New("guest address not backed by RAM")

// Memory is the set of RAM regions of one guest, sorted by address and never
// overlapping.
type Memory struct {
	regions []Region
	unmap   func() error
	file    *os.File // the memfd behind RAM that New mapped; nil otherwise
	track   tracking // dirty-page tracking and a private mapping's file (dirty.go, file.go)
	// zeroAdvice is the madvise advice that makes whole pages read as
	// zero (zero.go), for RAM that New mapped; 0 for other memory.
	zeroAdvice int
}

// File is the memfd that backs guest RAM, whose offsets are those of the
// host mapping (the first region at 0, the next right after it), or nil
// for memory that New did not map from one. The Memory keeps owning it.
func (m *Memory) File() *os.File { return m.file }

// FromRegions builds a Memory over host buffers the caller owns (tests use
// plain byte slices). It rejects overlapping or empty regions.
func FromRegions(regions ...Region) (*Memory, error) {
	rs := append([]Region(nil), regions...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	for i, r := range rs {
		if r.Size() == 0 {
			return nil, fmt.Errorf("memory region at %v is empty", r.Start)
		}
		if _, ok := r.Start.Add(r.Size()); !ok {
			return nil, fmt.Errorf("memory region at %v of %#x bytes wraps the address space", r.Start, r.Size())
		}
		if i > 0 && rs[i-1].End() > r.Start {
			return nil, fmt.Errorf("memory regions [%v, %v) and [%v, %v) overlap", rs[i-1].Start, rs[i-1].End(), r.Start, r.End())
		}
	}
	return &Memory{regions: rs}, nil
}

// Regions returns the RAM regions in address order. The slice is shared;
// callers must not modify it.
func (m *Memory) Regions() []Region { return m.regions }

// Size is the total number of bytes of RAM.
func (m *Memory) Size() uint64 {
	var n uint64
	for _, r := range m.regions {
		n += r.Size()
	}
	return n
}

// Slice returns the host bytes behind [addr, addr+n). The range must lie in
// one region; the error names the address otherwise.
func (m *Memory) Slice(addr GuestAddr, n uint64) ([]byte, error) {
	end, ok := addr.Add(n)
	if !ok {
		return nil, fmt.Errorf("guest range %v+%#x wraps the address space: %w", addr, n, ErrOutOfRange)
	}
	i := sort.Search(len(m.regions), func(i int) bool { return m.regions[i].End() > addr })
	if i == len(m.regions) || m.regions[i].Start > addr || end > m.regions[i].End() {
		return nil, fmt.Errorf("guest range [%v, %v): %w", addr, end, ErrOutOfRange)
	}
	r := m.regions[i]
	off := uint64(addr - r.Start)
	return r.Host[off : off+n : off+n], nil
}

// ReadAt copies guest bytes at addr into p.
func (m *Memory) ReadAt(p []byte, addr GuestAddr) error {
	b, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return fmt.Errorf("read %d bytes: %w", len(p), err)
	}
	copy(p, b)
	return nil
}

// WriteAt copies p into guest memory at addr.
func (m *Memory) WriteAt(p []byte, addr GuestAddr) error {
	b, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return fmt.Errorf("write %d bytes: %w", len(p), err)
	}
	copy(b, p)
	m.MarkDirty(addr, uint64(len(p)))
	return nil
}

// Close unmaps memory that New mapped. It is a no-op for FromRegions.
func (m *Memory) Close() error {
	if m.unmap == nil {
		return nil
	}
	err := m.unmap()
	m.unmap, m.regions, m.file, m.track.base = nil, nil, nil, nil
	return err
}
