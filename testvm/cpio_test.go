package testvm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	name string
	mode uint32
	data string
}

// readCPIO parses a newc archive up to its trailer, checking the magic,
// the padding and that nothing follows the trailer.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	field := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("cpio header at %d field %d: %v", off, i, err)
		}
		return int(v)
	}
	for {
		if off%4 != 0 || off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		mode, size, namesize := field(1), field(6), field(11)
		nameStart := off + 110
		name := string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("name %q is not NUL-terminated", name)
		}
		dataStart := (nameStart + namesize + 3) &^ 3
		data := string(b[dataStart : dataStart+size])
		off = (dataStart + size + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, uint32(mode), data})
	}
}

func TestCPIOWriter(t *testing.T) {
	tests := []struct {
		name string
		in   []cpioEntry
	}{
		{"empty", nil},
		{"one file", []cpioEntry{{"init", modeRegular | 0o755, "#!/bin/sh\n"}}},
		{"padding of every length", []cpioEntry{
			{"a", modeRegular | 0o644, ""},
			{"ab", modeRegular | 0o644, "1"},
			{"abc", modeRegular | 0o644, "12"},
			{"abcd", modeRegular | 0o644, "123"},
			{"d", modeDir | 0o755, ""},
			{"d/link", modeSymlink | 0o777, "../abc"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newCPIOWriter(&buf)
			for _, e := range tt.in {
				if err := w.writeEntry(e.name, e.mode, int64(len(e.data)), bytes.NewReader([]byte(e.data))); err != nil {
					t.Fatalf("writeEntry(%s) = %v", e.name, err)
				}
			}
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			got := readCPIO(t, buf.Bytes())
			if fmt.Sprint(got) != fmt.Sprint(tt.in) {
				t.Errorf("read back %v, want %v", got, tt.in)
			}
		})
	}
}

func TestCPIOWriterShortReader(t *testing.T) {
	w := newCPIOWriter(&bytes.Buffer{})
	if err := w.writeEntry("f", modeRegular|0o644, 10, bytes.NewReader([]byte("short"))); err == nil {
		t.Error("writeEntry with 5 of 10 bytes = nil, want an error")
	}
}

// TestInitramfs checks what the VM's initramfs holds: the fixed parts, the
// modules in order, and Files at their own paths with parents first.
func TestInitramfs(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string, mode os.FileMode) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Config{
		Busybox: write("busybox", "BB", 0o755),
		Modules: []string{write("m/kvm.ko", "K", 0o644), write("m/kvm-amd.ko", "A", 0o644)},
		Files:   []string{write("prog", "P", 0o755), filepath.Join(dir, "pkg")},
	}
	write("pkg/testdata/x", "X", 0o644)
	if err := os.Symlink("testdata/x", filepath.Join(dir, "pkg", "link")); err != nil {
		t.Fatal(err)
	}
	c.Files = append(c.Files, c.Files[0]) // a repeat is copied once
	var buf bytes.Buffer
	if _, err := initramfs(&buf, c, "INIT"); err != nil {
		t.Fatalf("initramfs() = %v", err)
	}
	entries := map[string]cpioEntry{}
	var order []string
	for _, e := range readCPIO(t, buf.Bytes()) {
		if _, dup := entries[e.name]; dup {
			t.Errorf("%s is in the archive twice", e.name)
		}
		entries[e.name] = e
		order = append(order, e.name)
	}
	rel := func(p string) string { return p[1:] }
	want := map[string]string{
		"init": "INIT", "bin/busybox": "BB", "bin/sh": "busybox",
		"testvm/modules/00-kvm.ko": "K", "testvm/modules/01-kvm-amd.ko": "A",
		rel(c.Files[0]): "P", rel(dir) + "/pkg/testdata/x": "X", rel(dir) + "/pkg/link": "testdata/x",
	}
	for name, data := range want {
		if e, ok := entries[name]; !ok || e.data != data {
			t.Errorf("archive entry %s = %q (present: %v), want %q", name, e.data, ok, data)
		}
	}
	if e := entries[rel(dir)+"/pkg/link"]; e.mode&0o170000 != modeSymlink {
		t.Errorf("pkg/link mode = %o, want a symbolic link", e.mode)
	}
	for _, d := range []string{"proc", "sys", "dev", "tmp"} {
		if e, ok := entries[d]; !ok || e.mode&0o170000 != modeDir {
			t.Errorf("archive lacks the directory /%s", d)
		}
	}
	seen := map[string]bool{}
	for _, name := range order {
		if parent := filepath.Dir(name); parent != "." && !seen[parent] {
			t.Errorf("%s comes before its directory %s", name, parent)
		}
		seen[name] = true
	}
	if _, err := initramfs(&bytes.Buffer{}, Config{Busybox: c.Busybox, Files: []string{"relative/path"}}, ""); err == nil {
		t.Error("initramfs with a relative file = nil error, want one")
	}
}
