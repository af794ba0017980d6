package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MapFile maps the first size bytes of f (a snapshot's memory file, laid
// out as the pages are numbered) privately as guest RAM, split around the
// MMIO hole as New splits it. Nothing is read: the guest's first access
// to a page reads it from f through the page cache, and its first write
// copies it, so f is never written and mapping costs the same for any
// size. The Memory owns f from then on, and File returns nil: RAM is not
// f. DataPages knows to look in f.
func MapFile(f *os.File, size uint64) (*Memory, error) {
	if size == 0 || size%PageSize != 0 {
		return nil, errors.Join(fmt.Errorf("guest RAM size %#x must be a non-zero multiple of the page size", size), f.Close())
	}
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if st.Size() < int64(size) {
		return nil, errors.Join(fmt.Errorf("memory file %s holds %d bytes, but the guest has %d: it is truncated or belongs to another snapshot", f.Name(), st.Size(), size), f.Close())
	}
	host, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mapping the memory file %s (%d MiB): %w", f.Name(), size>>20, err), f.Close())
	}
	m, err := FromRegions(SplitAroundHole(host)...)
	if err != nil {
		return nil, errors.Join(err, unix.Munmap(host), f.Close())
	}
	m.track.base = f
	m.unmap = func() error { return errors.Join(unix.Munmap(host), f.Close()) }
	return m, nil
}

// Bits of an entry of /proc/self/pagemap (Documentation/admin-guide/mm/
// pagemap.rst): one little-endian u64 per virtual page.
const (
	pagemapPresent  = 1 << 63 // the page is in RAM
	pagemapSwapped  = 1 << 62 // the page is in swap
	pagemapFilePage = 1 << 61 // a page of a file or shared memory, not private anonymous
	pagemapEntry    = 8
)

// DataPages returns the pages that may hold something other than zeros:
// the pages a snapshot or the first round of a migration must copy.
// The rest were never written, and read as zeros.
//
// For RAM in a memfd (New) that is the memfd's data, which lseek's
// SEEK_DATA finds. For a private mapping of a file (MapFile) it is the
// file's data and the pages the guest has written since, which are
// private anonymous pages that /proc/self/pagemap shows present or
// swapped. Anonymous RAM (no memfd) is all private anonymous. Without
// pagemap (nil), or for memory the caller mapped (FromRegions), every
// page counts.
func (m *Memory) DataPages(pagemap io.ReaderAt) (*Bitmap, error) {
	b := m.NewBitmap()
	switch {
	case m.file != nil:
		return b, fileData(m.file, b)
	case m.unmap == nil || pagemap == nil:
		b.SetRange(0, b.Len())
		return b, nil
	}
	if m.track.base != nil {
		if err := fileData(m.track.base, b); err != nil {
			return nil, err
		}
	}
	return b, m.anonymousPages(pagemap, b)
}

// fileData sets the pages of f that hold data (SEEK_DATA to SEEK_HOLE).
func fileData(f *os.File, b *Bitmap) error {
	fd := int(f.Fd())
	end := int64(b.Len()) * PageSize
	for off := int64(0); off < end; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data past off
		}
		if err != nil {
			return fmt.Errorf("finding the data in %s: lseek SEEK_DATA %d: %w", f.Name(), off, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("finding the data in %s: lseek SEEK_HOLE %d: %w", f.Name(), data, err)
		}
		first := int(data / PageSize)
		b.SetRange(first, int((min(hole, end)+PageSize-1)/PageSize)-first)
		off = hole
	}
	return nil
}

// anonymousPages sets the pages that are private anonymous memory in RAM
// or in swap, as /proc/self/pagemap says.
func (m *Memory) anonymousPages(pagemap io.ReaderAt, b *Bitmap) error {
	const chunk = 4096 // entries read at once
	buf := make([]byte, chunk*pagemapEntry)
	page := 0
	for _, r := range m.regions {
		n := int(r.Size() / PageSize)
		base := hostAddr(r.Host) / PageSize
		for i := 0; i < n; i += chunk {
			k := min(chunk, n-i)
			if _, err := pagemap.ReadAt(buf[:k*pagemapEntry], int64(base+uintptr(i))*pagemapEntry); err != nil {
				return fmt.Errorf("reading /proc/self/pagemap: %w", err)
			}
			for j := range k {
				e := binary.LittleEndian.Uint64(buf[j*pagemapEntry:])
				if e&pagemapSwapped != 0 || e&(pagemapPresent|pagemapFilePage) == pagemapPresent {
					b.Set(page + i + j)
				}
			}
		}
		page += n
	}
	return nil
}
