package boot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMapFile: a regular file's bytes come mapped, an empty file and a
// pipe are read, and a missing one is an error.
func TestMapFile(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte("kernel "), 10000)
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	b, unmap, err := MapFile(p)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("MapFile = %d bytes, %v; want the file's %d", len(b), err, len(want))
	}
	if err := unmap(); err != nil {
		t.Error(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _, err := MapFile(empty); err != nil || len(b) != 0 {
		t.Errorf("MapFile(empty) = %d bytes, %v", len(b), err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write([]byte("piped")); w.Close() }()
	defer r.Close()
	if b, _, err := MapFile("/proc/self/fd/" + strconv.Itoa(int(r.Fd()))); err != nil || string(b) != "piped" {
		t.Errorf("MapFile(pipe) = %q, %v; want it read", b, err)
	}
	if _, _, err := MapFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MapFile(missing) = %v", err)
	}
}

// TestGuardTruncatedFile: reading a mapped file past its new end, after
// someone truncated it, is an error from Guard, not a crash.
func TestGuardTruncatedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	b, unmap, err := MapFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err = Guard("copying the initrd", func() error {
		for _, c := range b {
			sum += c
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "copying the initrd: a file changed") {
		t.Errorf("Guard over a truncated mapping = %v, want the fault as an error", err)
	}
	if err := Guard("x", func() error { return errors.New("plain") }); err == nil || err.Error() != "plain" {
		t.Errorf("Guard passes f's error on: got %v", err)
	}
}

// TestGuardPassesOtherFaults: a nil pointer is a bug, not a changed file:
// Guard lets its panic through.
func TestGuardPassesOtherFaults(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a nil dereference inside Guard did not panic")
		}
	}()
	var p *[4096]byte
	err := Guard("x", func() error {
		_ = p[100]
		return nil
	})
	t.Errorf("Guard returned %v for a nil dereference", err)
}
