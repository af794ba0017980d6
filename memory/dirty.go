package memory

import (
	"fmt"
	"math/bits"
	"os"
	"sync/atomic"
)

// PageSize is the unit of dirty tracking, snapshots and migration: the
// host's and KVM's page on x86.
const PageSize = 4096

// Pages are numbered in the order of the regions, as the host mapping and
// the memfd lay them out: page i is bytes [i*PageSize, (i+1)*PageSize) of
// RAM counted from the first region's first byte, the second region's
// first page coming right after the first's last. A memory file of a
// snapshot is laid out the same way.

// Bitmap has one bit per page of guest RAM.
type Bitmap struct {
	words []uint64
	pages int
}

// NewBitmap returns an empty bitmap for pages pages.
func NewBitmap(pages int) *Bitmap {
	return &Bitmap{words: make([]uint64, (pages+63)/64), pages: pages}
}

// NewBitmap returns an empty bitmap with a bit for each page of m.
func (m *Memory) NewBitmap() *Bitmap { return NewBitmap(int(m.Size() / PageSize)) }

// Len is the number of pages.
func (b *Bitmap) Len() int { return b.pages }

// Words are the bitmap's 64-bit words, page i at bit i%64 of word i/64;
// the bits past Len are zero. The slice is the bitmap's own.
func (b *Bitmap) Words() []uint64 { return b.words }

// Get reports whether page i is set; false outside the bitmap.
func (b *Bitmap) Get(i int) bool {
	return i >= 0 && i < b.pages && b.words[i/64]&(1<<(i%64)) != 0
}

// Set sets page i; a page outside the bitmap is ignored.
func (b *Bitmap) Set(i int) {
	if i >= 0 && i < b.pages {
		b.words[i/64] |= 1 << (i % 64)
	}
}

// SetRange sets pages [first, first+n), clipped to the bitmap.
func (b *Bitmap) SetRange(first, n int) {
	end := min(first+n, b.pages)
	for i := max(first, 0); i < end; {
		if i%64 == 0 && end-i >= 64 {
			b.words[i/64] = ^uint64(0)
			i += 64
			continue
		}
		b.words[i/64] |= 1 << (i % 64)
		i++
	}
}

// Or sets every page set in o; o must be as long as b.
func (b *Bitmap) Or(o *Bitmap) {
	for i := range min(len(b.words), len(o.words)) {
		b.words[i] |= o.words[i]
	}
}

// OrWords sets the pages of words, a bitmap whose bit 0 is page first:
// KVM's dirty log of a memory slot whose first page is first. Pages past
// the bitmap are ignored.
func (b *Bitmap) OrWords(first int, words []uint64) {
	if first%64 == 0 {
		base := first / 64
		for i, w := range words {
			if base+i >= len(b.words) {
				break
			}
			b.words[base+i] |= w
		}
		b.clearTail()
		return
	}
	for i, w := range words {
		for w != 0 {
			bit := bits.TrailingZeros64(w)
			w &^= 1 << bit
			b.Set(first + i*64 + bit)
		}
	}
}

// clearTail keeps the bits past Len zero.
func (b *Bitmap) clearTail() {
	if r := b.pages % 64; r != 0 {
		b.words[len(b.words)-1] &= 1<<r - 1
	}
}

// Count is the number of pages set.
func (b *Bitmap) Count() int {
	n := 0
	for _, w := range b.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// Clear unsets every page.
func (b *Bitmap) Clear() { clear(b.words) }

// Runs calls f for each run of consecutive set pages, in order, until f
// returns false.
func (b *Bitmap) Runs(f func(first, n int) bool) {
	i := 0
	for i < b.pages {
		w := b.words[i/64] >> (i % 64)
		if w == 0 {
			i = (i/64 + 1) * 64
			continue
		}
		i += bits.TrailingZeros64(w)
		start := i
		for i < b.pages {
			w := ^b.words[i/64] >> (i % 64)
			if w == 0 {
				i = (i/64 + 1) * 64
				continue
			}
			i += bits.TrailingZeros64(w)
			break
		}
		i = min(i, b.pages)
		if !f(start, i-start) {
			return
		}
	}
}

// tracking is what a Memory keeps for snapshots and migration.
type tracking struct {
	// writes has a bit per page the VMM wrote since TakeWrites last
	// took them, while TrackWrites is on; nil while it is off.
	writes atomic.Pointer[[]atomic.Uint64]
	// base is the file MapFile mapped privately: the pages the guest has
	// not written since are its.
	base *os.File
}

// TrackWrites turns on (or off) the record of the pages the VMM itself
// writes: WriteAt, the atomic stores, and MarkDirty for a device that
// wrote through Slice. KVM's dirty log sees only the guest's writes; a
// snapshot or migration ORs the two (TakeWrites).
func (m *Memory) TrackWrites(on bool) {
	if !on {
		m.track.writes.Store(nil)
		return
	}
	if m.track.writes.Load() == nil {
		w := make([]atomic.Uint64, (m.Size()/PageSize+63)/64)
		m.track.writes.CompareAndSwap(nil, &w)
	}
}

// MarkDirty records that the VMM wrote guest RAM at [addr, addr+n): a
// device that writes through Slice must call it after writing, so that a
// snapshot or migration under way sends the pages again. It costs one
// atomic load while nothing tracks writes. Bytes outside RAM are ignored.
func (m *Memory) MarkDirty(addr GuestAddr, n uint64) {
	w := m.track.writes.Load()
	if w == nil || n == 0 {
		return
	}
	first, ok := m.PageIndex(addr)
	if !ok {
		return
	}
	last := first + int((uint64(addr)%PageSize+n-1)/PageSize)
	words := *w
	for i := first; i <= last && i/64 < len(words); i++ {
		words[i/64].Or(1 << (i % 64))
	}
}

// TakeWrites ORs the pages the VMM wrote since the last call into b, and
// forgets them. It does nothing while TrackWrites is off.
func (m *Memory) TakeWrites(b *Bitmap) {
	w := m.track.writes.Load()
	if w == nil {
		return
	}
	for i := range *w {
		if i >= len(b.words) {
			break
		}
		if v := (*w)[i].Swap(0); v != 0 {
			b.words[i] |= v
		}
	}
	b.clearTail()
}

// PageIndex is the number of the page holding guest address addr, false
// when addr is not RAM.
func (m *Memory) PageIndex(addr GuestAddr) (int, bool) {
	var off uint64
	for _, r := range m.regions {
		if addr >= r.Start && addr < r.End() {
			return int((off + uint64(addr-r.Start)) / PageSize), true
		}
		off += r.Size()
	}
	return 0, false
}

// PageAddr is the guest address of page i, false past the end of RAM.
func (m *Memory) PageAddr(i int) (GuestAddr, bool) {
	off := uint64(i) * PageSize
	for _, r := range m.regions {
		if off < r.Size() {
			return r.Start + GuestAddr(off), true
		}
		off -= r.Size()
	}
	return 0, false
}

// HostPages returns the host bytes of pages [first, first+n), which must
// lie in one region.
func (m *Memory) HostPages(first, n int) ([]byte, error) {
	addr, ok := m.PageAddr(first)
	if !ok || n < 0 {
		return nil, fmt.Errorf("pages [%d, %d): %w", first, first+n, ErrOutOfRange)
	}
	return m.Slice(addr, uint64(n)*PageSize)
}

// RegionRuns calls f for each run of pages set in b, split where a region
// ends and into pieces of at most max pages (max > 0), with their host
// bytes, until f returns an error.
func (m *Memory) RegionRuns(b *Bitmap, max int, f func(first int, host []byte) error) error {
	// The first page of each region, and where RAM ends.
	var starts []int
	off := 0
	for _, r := range m.regions {
		starts = append(starts, off)
		off += int(r.Size() / PageSize)
	}
	starts = append(starts, off)
	var err error
	b.Runs(func(first, n int) bool {
		for n > 0 && err == nil {
			next := starts[len(starts)-1]
			for _, s := range starts {
				if s > first {
					next = s
					break
				}
			}
			k := min(n, max, next-first)
			if k <= 0 {
				err = fmt.Errorf("page %d: %w", first, ErrOutOfRange)
				break
			}
			var host []byte
			if host, err = m.HostPages(first, k); err == nil {
				err = f(first, host)
			}
			first, n = first+k, n-k
		}
		return err == nil
	})
	return err
}
