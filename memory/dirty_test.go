package memory

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// runs lists b's runs as [first, n] pairs.
func runs(b *Bitmap) [][2]int {
	var out [][2]int
	b.Runs(func(first, n int) bool {
		out = append(out, [2]int{first, n})
		return true
	})
	return out
}

func TestBitmapRuns(t *testing.T) {
	tests := []struct {
		name  string
		pages int
		set   [][2]int // SetRange calls
		want  [][2]int
	}{
		{"empty", 100, nil, nil},
		{"one page", 100, [][2]int{{5, 1}}, [][2]int{{5, 1}}},
		{"across a word", 200, [][2]int{{60, 10}}, [][2]int{{60, 10}}},
		{"whole words", 256, [][2]int{{64, 128}}, [][2]int{{64, 128}}},
		{"to the end", 130, [][2]int{{120, 10}}, [][2]int{{120, 10}}},
		{"clipped past the end", 130, [][2]int{{125, 50}}, [][2]int{{125, 5}}},
		{"two runs merged", 100, [][2]int{{1, 2}, {3, 2}}, [][2]int{{1, 4}}},
		{"two runs", 300, [][2]int{{0, 1}, {2, 1}, {64, 64}, {200, 100}}, [][2]int{{0, 1}, {2, 1}, {64, 64}, {200, 100}}},
		{"all", 70, [][2]int{{0, 70}}, [][2]int{{0, 70}}},
	}
	for _, tt := range tests {
		b := NewBitmap(tt.pages)
		for _, s := range tt.set {
			b.SetRange(s[0], s[1])
		}
		if got := runs(b); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Runs() = %v, want %v", tt.name, got, tt.want)
		}
		n := 0
		for _, r := range tt.want {
			n += r[1]
		}
		if got := b.Count(); got != n {
			t.Errorf("%s: Count() = %d, want %d", tt.name, got, n)
		}
	}
}

// TestBitmapOrWords checks merging KVM's per-slot dirty logs: a slot
// starting on a word boundary and one that does not, and bits past the
// bitmap's end.
func TestBitmapOrWords(t *testing.T) {
	tests := []struct {
		pages, first int
		words        []uint64
		want         [][2]int
	}{
		{128, 64, []uint64{0b1011}, [][2]int{{64, 2}, {67, 1}}},
		{128, 3, []uint64{1 | 1<<63}, [][2]int{{3, 1}, {66, 1}}},
		{70, 64, []uint64{^uint64(0)}, [][2]int{{64, 6}}},
		{70, 0, []uint64{0, 0, 1}, nil},
	}
	for _, tt := range tests {
		b := NewBitmap(tt.pages)
		b.OrWords(tt.first, tt.words)
		if got := runs(b); !slices.Equal(got, tt.want) {
			t.Errorf("OrWords(%d, %#x) on %d pages = %v, want %v", tt.first, tt.words, tt.pages, got, tt.want)
		}
	}
}

// TestTrackWrites checks that the VMM's own writes (WriteAt, the atomic
// stores, MarkDirty) are recorded while tracking is on, in both regions,
// and taken once.
func TestTrackWrites(t *testing.T) {
	m, err := FromRegions(
		Region{Start: 0, Host: make([]byte, 8*PageSize)},
		Region{Start: 0x100000, Host: make([]byte, 4*PageSize)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	b := m.NewBitmap()
	m.TakeWrites(b)
	if b.Count() != 0 {
		t.Errorf("TakeWrites with tracking off = %v, want nothing", runs(b))
	}
	m.TrackWrites(true)
	steps := []func() error{
		func() error { return m.WriteAt(make([]byte, PageSize+2), PageSize-1) }, // pages 0, 1, 2
		func() error { return m.StoreUint32(0x100000+2*PageSize, 7) },           // page 10
		func() error { m.MarkDirty(0x100000+3*PageSize+5, 1); return nil },      // page 11
		func() error { m.MarkDirty(0x50000, 1); return nil },                    // not RAM
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	m.TakeWrites(b)
	if got, want := runs(b), [][2]int{{0, 3}, {10, 2}}; !slices.Equal(got, want) {
		t.Errorf("TakeWrites() = %v, want %v", got, want)
	}
	b.Clear()
	m.TakeWrites(b)
	if b.Count() != 0 {
		t.Errorf("second TakeWrites() = %v, want nothing: the first took them", runs(b))
	}
	m.TrackWrites(false)
	if err := m.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	m.TakeWrites(b)
	if b.Count() != 0 {
		t.Errorf("TakeWrites after tracking stopped = %v, want nothing", runs(b))
	}
}

func TestPageIndexAndRuns(t *testing.T) {
	m, err := FromRegions(
		Region{Start: 0, Host: make([]byte, 4*PageSize)},
		Region{Start: 0x100000, Host: make([]byte, 4*PageSize)},
	)
	if err != nil {
		t.Fatal(err)
	}
	idx := []struct {
		addr GuestAddr
		page int
		ok   bool
	}{{0, 0, true}, {PageSize*3 + 1, 3, true}, {PageSize * 4, 0, false}, {0x100000 + PageSize, 5, true}, {0x200000, 0, false}}
	for _, tt := range idx {
		p, ok := m.PageIndex(tt.addr)
		if p != tt.page || ok != tt.ok {
			t.Errorf("PageIndex(%v) = %d, %v, want %d, %v", tt.addr, p, ok, tt.page, tt.ok)
		}
		if ok {
			if a, _ := m.PageAddr(p); a != tt.addr&^(PageSize-1) {
				t.Errorf("PageAddr(%d) = %v, want %v", p, a, tt.addr&^(PageSize-1))
			}
		}
	}
	b := m.NewBitmap()
	b.SetRange(2, 5) // pages 2-6: crosses the regions' boundary
	var got [][2]int
	err = m.RegionRuns(b, 2, func(first int, host []byte) error {
		got = append(got, [2]int{first, len(host) / PageSize})
		return nil
	})
	if want := [][2]int{{2, 2}, {4, 2}, {6, 1}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("RegionRuns(pages 2-6, max 2) = %v, %v, want %v", got, err, want)
	}
}

// TestDataPages checks which pages a snapshot copies: in a memfd, those
// written; in a private mapping of a file, the file's data and the pages
// written since (from /proc/self/pagemap).
func TestDataPages(t *testing.T) {
	m, err := New(64 * PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.File() == nil {
		t.Skip("this kernel has no memfd_create: guest RAM is anonymous")
	}
	for _, p := range []int{3, 4, 40} {
		if err := m.WriteAt([]byte{byte(p)}, GuestAddr(p*PageSize+100)); err != nil {
			t.Fatal(err)
		}
	}
	var buf [1]byte
	// A read of a memfd page allocates it (shmem has no shared zero
	// page): DataPages may name pages of zeros, which a snapshot skips.
	if err := m.ReadAt(buf[:], 20*PageSize); err != nil {
		t.Fatal(err)
	}
	b, err := m.DataPages(nil)
	if got, want := runs(b), [][2]int{{3, 2}, {20, 1}, {40, 1}}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("memfd DataPages() = %v, %v, want %v", got, err, want)
	}

	// The memfd's pages as a memory file, holes where it has them.
	path := filepath.Join(t.TempDir(), "memory")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(m.Size())); err != nil {
		t.Fatal(err)
	}
	err = m.RegionRuns(b, 16, func(first int, host []byte) error {
		_, err := f.WriteAt(host, int64(first)*PageSize)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := MapFile(f, m.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.ReadAt(buf[:], 40*PageSize+100); err != nil || buf[0] != 40 {
		t.Errorf("MapFile: byte at page 40 = %d, %v, want 40", buf[0], err)
	}
	if err := r.WriteAt([]byte{9}, 10*PageSize); err != nil {
		t.Fatal(err)
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no /proc/self/pagemap: %v", err)
	}
	defer pagemap.Close()
	b, err = r.DataPages(pagemap)
	if got, want := runs(b), [][2]int{{3, 2}, {10, 1}, {20, 1}, {40, 1}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("MapFile DataPages() = %v, %v, want %v (the file's data and page 10, written since)", got, err, want)
	}
	// The guest's write stayed in this process.
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if onDisk[10*PageSize] != 0 {
		t.Errorf("a write to privately mapped RAM reached the memory file")
	}
}

func TestMapFileRefusesShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "memory")
	if err := os.WriteFile(path, make([]byte, PageSize), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MapFile(f, 2*PageSize); err == nil {
		t.Errorf("MapFile(a 1-page file, 2 pages) = nil error, want one saying it is truncated")
	}
}
