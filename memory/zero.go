package memory

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Zero makes guest bytes [addr, addr+n) read as zero. Whole pages of RAM
// that New mapped are handed back to the kernel instead of written
// (MADV_REMOVE punches them out of the memfd, MADV_DONTNEED drops
// anonymous ones), which costs one system call however many pages there
// are and leaves pages that were never touched untouched: the loaders
// clear a kernel's BSS this way, so a fresh guest does not fault in
// hundreds of pages of zeros before it starts. Partial pages, and memory
// from FromRegions or a private snapshot mapping (whose dropped pages would
// read as the file's), are cleared byte by byte. The range counts as
// written for dirty-page tracking.
func (m *Memory) Zero(addr GuestAddr, n uint64) error {
	b, err := m.Slice(addr, n)
	if err != nil {
		return fmt.Errorf("zero %d bytes: %w", n, err)
	}
	defer m.MarkDirty(addr, n)
	page := uint64(PageSize)
	first := (uint64(addr) + page - 1) &^ (page - 1) // first whole page
	last := (uint64(addr) + n) &^ (page - 1)         // end of the last whole page
	if m.zeroAdvice == 0 || first >= last {
		clear(b)
		return nil
	}
	head, whole := first-uint64(addr), last-first
	if err := unix.Madvise(b[head:head+whole], m.zeroAdvice); err != nil {
		clear(b) // the kernel refused: the slow way still zeroes
		return nil
	}
	clear(b[:head])
	clear(b[head+whole:])
	return nil
}

// Populate faults guest bytes [addr, addr+n) in for writing with one
// system call (MADV_POPULATE_WRITE, Linux 5.14) before a loader copies a
// kernel or an initrd there: each page fault the copy would take costs
// microseconds on a PVM host, and a 30 MB kernel is 7,500 of them. It
// only helps, so where the kernel lacks the advice, or for memory New did
// not map, it does nothing and the copy faults the pages in itself.
func (m *Memory) Populate(addr GuestAddr, n uint64) {
	if m.zeroAdvice == 0 || n == 0 {
		return
	}
	page := uint64(PageSize)
	start := uint64(addr) &^ (page - 1)
	end := (uint64(addr) + n + page - 1) &^ (page - 1)
	b, err := m.Slice(GuestAddr(start), end-start)
	if err != nil {
		return // the copy reports the range
	}
	_ = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
}
