package memory

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// checkZero runs Zero over a range with partial pages at both ends of
// memory filled with 0xaa, and checks exactly that range reads zero.
func checkZero(t *testing.T, m *Memory) {
	t.Helper()
	size := m.Size()
	fill := bytes.Repeat([]byte{0xaa}, int(size))
	if err := m.WriteAt(fill, 0); err != nil {
		t.Fatal(err)
	}
	const start, n = 100, 3*PageSize + 7 // partial first and last pages
	if err := m.Zero(start, n); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, size)
	if err := m.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		in := i >= start && i < start+n
		if in && b != 0 || !in && b != 0xaa {
			t.Fatalf("byte %#x = %#x after Zero(%#x, %#x)", i, b, start, n)
		}
	}
	if err := m.Zero(GuestAddr(size-1), 2); err == nil {
		t.Error("Zero past the end of RAM succeeded")
	}
}

func TestZeroMemfd(t *testing.T) {
	m, err := New(8 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.File() == nil {
		t.Skip("no memfd on this kernel: RAM is anonymous (TestZeroAnonymous)")
	}
	checkZero(t, m)
}

func TestZeroAnonymous(t *testing.T) {
	host, err := unix.Mmap(-1, 0, 8*PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(host)
	m, err := FromRegions(Region{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	m.zeroAdvice = unix.MADV_DONTNEED // as New sets it without a memfd
	checkZero(t, m)
}

func TestZeroPlainSlice(t *testing.T) {
	m, err := FromRegions(Region{Host: make([]byte, 8*PageSize)})
	if err != nil {
		t.Fatal(err)
	}
	checkZero(t, m)
}

// TestZeroLeavesFreshRAMUntouched: zeroing a kernel's BSS in fresh RAM must
// not fault its pages in (each fault costs microseconds on a PVM host);
// only the partial pages at the ends are written.
func TestZeroLeavesFreshRAMUntouched(t *testing.T) {
	m, err := New(64 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Zero(PageSize+5, 40*PageSize); err != nil {
		t.Fatal(err)
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer pagemap.Close()
	data, err := m.DataPages(pagemap)
	if err != nil {
		t.Fatal(err)
	}
	resident := 0
	for i := range data.Len() {
		if data.Get(i) {
			resident++
		}
	}
	if resident > 2 {
		t.Errorf("%d pages hold data after zeroing 40 pages of fresh RAM, want at most the 2 partial ones", resident)
	}
}

// TestPopulate: Populate allocates the pages of a range of fresh RAM
// before a loader writes them (the partial pages at its ends included),
// and nothing outside it.
func TestPopulate(t *testing.T) {
	m, err := New(64 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.File() == nil {
		t.Skip("no memfd on this kernel: DataPages cannot see populated anonymous pages without pagemap")
	}
	m.Populate(PageSize+5, 10*PageSize) // pages 1 to 11
	data, err := m.DataPages(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for i := range data.Len() {
		if data.Get(i) {
			got = append(got, i)
		}
	}
	if len(got) == 0 {
		t.Skip("MADV_POPULATE_WRITE did nothing: a kernel before 5.14")
	}
	if len(got) != 11 || got[0] != 1 || got[10] != 11 {
		t.Errorf("pages holding data after Populate(page 1 + 5, 10 pages) = %v, want 1-11", got)
	}
}
