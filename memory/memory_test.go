package memory

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestFromRegionsRejectsBadLayouts(t *testing.T) {
	tests := []struct {
		name    string
		regions []Region
		wantErr string
	}{
		{"overlap", []Region{{Start: 0, Host: make([]byte, 0x2000)}, {Start: 0x1000, Host: make([]byte, 0x1000)}}, "overlap"},
		{"empty", []Region{{Start: 0, Host: nil}}, "empty"},
		{"wraps", []Region{{Start: ^GuestAddr(0) - 0xff, Host: make([]byte, 0x1000)}}, "wraps"},
	}
	for _, tt := range tests {
		_, err := FromRegions(tt.regions...)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("FromRegions(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestSliceBounds(t *testing.T) {
	m, err := FromRegions(
		Region{Start: 0x10000, Host: make([]byte, 0x1000)},
		Region{Start: 0, Host: make([]byte, 0x1000)},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr GuestAddr
		n    uint64
		ok   bool
	}{
		{0, 0x1000, true},
		{0xfff, 1, true},
		{0xfff, 2, false}, // runs past the first region
		{0x1000, 1, false},
		{0x10000, 0x1000, true},
		{0x10800, 0x801, false},
		{0x20000, 1, false},
		{^GuestAddr(0), 2, false}, // wraps
	}
	for _, tt := range tests {
		b, err := m.Slice(tt.addr, tt.n)
		if (err == nil) != tt.ok {
			t.Errorf("Slice(%v, %#x) error = %v, want ok %v", tt.addr, tt.n, err, tt.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), tt.addr.String()) {
				t.Errorf("Slice(%v, %#x) = %v, want ErrOutOfRange naming the address", tt.addr, tt.n, err)
			}
			continue
		}
		if uint64(len(b)) != tt.n || uint64(cap(b)) != tt.n {
			t.Errorf("Slice(%v, %#x) len %d cap %d, want both %d", tt.addr, tt.n, len(b), cap(b), tt.n)
		}
	}
}

func TestReadWriteAt(t *testing.T) {
	host := make([]byte, 0x1000)
	m, err := FromRegions(Region{Start: 0x1000, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteAt([]byte("hello"), 0x1800); err != nil {
		t.Fatal(err)
	}
	if got := string(host[0x800:0x805]); got != "hello" {
		t.Errorf("host bytes after WriteAt = %q, want %q", got, "hello")
	}
	p := make([]byte, 5)
	if err := m.ReadAt(p, 0x1800); err != nil || string(p) != "hello" {
		t.Errorf("ReadAt(0x1800) = %q, %v, want hello", p, err)
	}
	if err := m.WriteAt(p, 0x1ffe); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WriteAt past the end = %v, want ErrOutOfRange", err)
	}
}

func TestSplitAroundHole(t *testing.T) {
	tests := []struct {
		size uint64
		want []Region // only Start and size matter
	}{
		{512 << 20, []Region{{Start: 0, Host: make([]byte, 512<<20)}}},
		{uint64(HoleStart), []Region{{Start: 0, Host: make([]byte, HoleStart)}}},
	}
	for _, tt := range tests {
		got := SplitAroundHole(make([]byte, tt.size))
		if len(got) != len(tt.want) || got[0].Start != tt.want[0].Start || got[0].Size() != tt.want[0].Size() {
			t.Errorf("SplitAroundHole(%#x) = %d regions, want %d", tt.size, len(got), len(tt.want))
		}
	}
}

// TestNewIsLazy maps a large guest and checks the VMM's resident memory does
// not grow with it: MAP_NORESERVE memory costs nothing until touched.
func TestNewIsLazy(t *testing.T) {
	before := residentKiB(t)
	m, err := New(8 << 30) // 8 GiB, more than the hole: two regions
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := len(m.Regions()); got != 2 {
		t.Fatalf("New(8G) has %d regions, want 2 (split around the MMIO hole)", got)
	}
	if r := m.Regions()[1]; r.Start != HoleEnd || r.Size() != 8<<30-uint64(HoleStart) {
		t.Errorf("high region = [%v, %v), want to start at %v with %#x bytes", r.Start, r.End(), HoleEnd, 8<<30-uint64(HoleStart))
	}
	if m.Size() != 8<<30 {
		t.Errorf("Size() = %#x, want 8 GiB", m.Size())
	}
	if grew := residentKiB(t) - before; grew > 16<<10 {
		t.Errorf("resident memory grew by %d KiB after mapping 8 GiB, want under 16 MiB", grew)
	}
	// Touching one page costs about a page, and works above the hole.
	if err := m.WriteAt([]byte{1}, HoleEnd+0x1000); err != nil {
		t.Fatal(err)
	}
}

func residentKiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("VmRSS not found in /proc/self/status")
	return 0
}
