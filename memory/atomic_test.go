package memory

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestAtomicAccessors(t *testing.T) {
	host := make([]byte, 0x1000)
	m, err := FromRegions(Region{Start: 0x2000, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.StoreUint16(0x2002, 0xBEEF); err != nil {
		t.Fatalf("StoreUint16(0x2002) = %v", err)
	}
	if err := m.StoreUint32(0x2004, 0x01020304); err != nil {
		t.Fatalf("StoreUint32(0x2004) = %v", err)
	}
	if host[2] != 0xEF || host[3] != 0xBE || host[4] != 4 || host[7] != 1 {
		t.Errorf("host bytes % x, want little-endian 0xbeef at 2 and 0x01020304 at 4", host[:8])
	}
	if v, err := m.LoadUint16(0x2002); v != 0xBEEF || err != nil {
		t.Errorf("LoadUint16(0x2002) = %#x, %v, want 0xbeef", v, err)
	}
	if v, err := m.LoadUint32(0x2004); v != 0x01020304 || err != nil {
		t.Errorf("LoadUint32(0x2004) = %#x, %v, want 0x01020304", v, err)
	}
	Fence()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"misaligned 16", func() error { _, err := m.LoadUint16(0x2001); return err }(), "aligned"},
		{"misaligned 32", m.StoreUint32(0x2002, 0), "aligned"},
		{"below RAM", m.StoreUint16(0x1ffe, 0), "not backed"},
		{"past RAM", func() error { _, err := m.LoadUint32(0x3000); return err }(), "not backed"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, tt.err, tt.want)
		}
	}
	if _, err := m.LoadUint16(0x3000); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("LoadUint16(0x3000) = %v, want ErrOutOfRange", err)
	}
}

// TestNewIsMemfd: RAM from New is a shared memfd mapping, so what the
// guest (here, the mapping) writes is in the file.
func TestNewIsMemfd(t *testing.T) {
	m, err := New(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := m.File()
	if f == nil {
		t.Fatal("File() = nil, want the memfd behind guest RAM")
	}
	if err := m.WriteAt([]byte("govmm"), 0x1234); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := f.ReadAt(got, 0x1234); err != nil || string(got) != "govmm" {
		t.Errorf("memfd ReadAt(0x1234) = %q, %v, want \"govmm\"", got, err)
	}
	st, err := f.Stat()
	if err != nil || st.Size() != 1<<20 {
		t.Errorf("memfd size = %v, %v, want %d", st, err, 1<<20)
	}
}

// TestNewUnderFileSizeLimit: with RLIMIT_FSIZE below RAM's size (govmm
// jail -fsize), which the kernel applies to a memfd too, RAM is anonymous
// memory instead of an error.
func TestNewUnderFileSizeLimit(t *testing.T) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := unix.Rlimit{Cur: 1 << 20, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	m, err := New(64 << 20)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("New(64 MiB) under a 1 MiB file-size limit: %v", err)
	}
	defer m.Close()
	if m.File() != nil {
		t.Error("File() is a memfd, want anonymous RAM under the limit")
	}
	if err := m.WriteAt([]byte("govmm"), 32<<20); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if err := m.ReadAt(got, 32<<20); err != nil || string(got) != "govmm" {
		t.Errorf("ReadAt(32 MiB) = %q, %v, want \"govmm\"", got, err)
	}
}
