package devices

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
)

// Space says which address space a range belongs to.
type Space int

const (
	PortIO Space = iota // x86 I/O ports, 0..0xffff
	MMIO                // guest-physical memory-mapped I/O
)

func (s Space) String() string {
	if s == PortIO {
		return "port"
	}
	return "mmio"
}

// Range is a registered device window.
type Range struct {
	Base, Size uint64
	Name       string
	Dev        Device
}

func (r Range) end() uint64 { return r.Base + r.Size }

// Bus routes accesses to the device whose range holds them. Registration
// rejects overlaps. Lookups take a read lock, so vCPU threads dispatch
// concurrently; each device does its own locking.
type Bus struct {
	space  Space
	mu     sync.RWMutex
	ranges []Range // sorted by Base, disjoint

	// Unclaimed counts accesses that hit no device: they read as all-ones
	// and writes are dropped, as on real hardware.
	Unclaimed atomic.Uint64
}

// NewBus returns an empty bus for one address space.
func NewBus(space Space) *Bus { return &Bus{space: space} }

// Register claims [base, base+size) for d. name appears in errors and traces.
func (b *Bus) Register(base, size uint64, name string, d Device) error {
	if size == 0 || base+size < base {
		return fmt.Errorf("%s %s range %#x+%#x is empty or wraps", name, b.space, base, size)
	}
	if b.space == PortIO && base+size > 0x10000 {
		return fmt.Errorf("%s port range %#x+%#x is beyond port 0xffff", name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := Range{Base: base, Size: size, Name: name, Dev: d}
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].Base >= base })
	if i > 0 && b.ranges[i-1].end() > base {
		p := b.ranges[i-1]
		return fmt.Errorf("%s %s range [%#x, %#x) overlaps %s at [%#x, %#x)", name, b.space, base, r.end(), p.Name, p.Base, p.end())
	}
	if i < len(b.ranges) && b.ranges[i].Base < r.end() {
		n := b.ranges[i]
		return fmt.Errorf("%s %s range [%#x, %#x) overlaps %s at [%#x, %#x)", name, b.space, base, r.end(), n.Name, n.Base, n.end())
	}
	b.ranges = append(b.ranges, Range{})
	copy(b.ranges[i+1:], b.ranges[i:])
	b.ranges[i] = r
	return nil
}

// Lookup returns the range holding [addr, addr+n), if one device owns all
// of it.
func (b *Bus) Lookup(addr uint64, n int) (Range, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.ranges), func(i int) bool { return b.ranges[i].end() > addr })
	if i == len(b.ranges) {
		return Range{}, false
	}
	r := b.ranges[i]
	if addr < r.Base || addr+uint64(n) > r.end() {
		return Range{}, false
	}
	return r, true
}

// Read dispatches a read. It reports whether a device claimed it; an
// unclaimed read fills p with 0xff.
func (b *Bus) Read(addr uint64, p []byte) bool {
	r, ok := b.Lookup(addr, len(p))
	if !ok {
		b.Unclaimed.Add(1)
		for i := range p {
			p[i] = 0xff
		}
		return false
	}
	r.Dev.Read(addr-r.Base, p)
	return true
}

// Write dispatches a write. It reports whether a device claimed it; an
// unclaimed write is dropped.
func (b *Bus) Write(addr uint64, p []byte) bool {
	r, ok := b.Lookup(addr, len(p))
	if !ok {
		b.Unclaimed.Add(1)
		return false
	}
	r.Dev.Write(addr-r.Base, p)
	return true
}

// Ranges returns a copy of the registered ranges in address order.
func (b *Bus) Ranges() []Range {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]Range(nil), b.ranges...)
}
