package boot

// Kernel, initrd and cache files mapped instead of read: a loader copies
// each byte once, from the page cache straight into guest RAM, instead of
// reading the file into the heap (a page fault per 4 KiB, each costing
// microseconds on a PVM host) and copying it again.

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MapFile returns the bytes of the file at path, mapped read-only, and
// the function that unmaps them. What is not a regular file (a pipe, a
// process substitution) is read instead, and unmap does nothing. A file
// mapped may change under the mapping: read its bytes only inside Guard.
func MapFile(path string) (b []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	none := func() error { return nil }
	if !st.Mode().IsRegular() || st.Size() == 0 {
		b, err := io.ReadAll(f)
		return b, none, err
	}
	if st.Size() != int64(int(st.Size())) {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map", path, st.Size())
	}
	b, err = unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	// Safe: only the mapping's address range is kept, as numbers to tell
	// a fault address by; nothing is reached through them.
	m := mapping{start: uintptr(unsafe.Pointer(&b[0])), end: uintptr(unsafe.Pointer(&b[0])) + uintptr(len(b))}
	mappings.add(m)
	return b, func() error {
		mappings.remove(m)
		return unix.Munmap(b)
	}, nil
}

// mapping is the address range of a file MapFile mapped.
type mapping struct{ start, end uintptr }

// mappings are the files mapped now, for Guard to tell a fault on one of
// them from a bug.
var mappings mappingSet

type mappingSet struct {
	mu sync.Mutex
	m  map[mapping]struct{}
}

func (s *mappingSet) add(m mapping) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[mapping]struct{}{}
	}
	s.m[m] = struct{}{}
}

func (s *mappingSet) remove(m mapping) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, m)
}

// contains says whether addr lies in a mapped file.
func (s *mappingSet) contains(addr uintptr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.m {
		if addr >= m.start && addr < m.end {
			return true
		}
	}
	return false
}

// Guard runs f, which reads mapped files, and turns a fault on one (the
// file was truncated while govmm read it) into an error naming what, where
// it would otherwise crash the VMM. Other panics, other faults (a nil
// pointer) included, pass through.
func Guard(what string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, fault := r.(interface{ Addr() uintptr }); fault && mappings.contains(f.Addr()) {
			err = fmt.Errorf("%s: a file changed while govmm read it (truncated or rewritten in place): %v", what, r)
			return
		}
		panic(r)
	}()
	return f()
}
