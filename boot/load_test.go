package boot

import (
	"bytes"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
)

func TestLoadBzImage(t *testing.T) {
	tests := []struct {
		name      string
		ram       uint64
		edit      func(*fakeBz)
		wantLoad  memory.GuestAddr
		wantEnd   memory.GuestAddr
		wantError string
	}{
		{"at pref_address", 64 << 20, func(*fakeBz) {}, 16 << 20, 24 << 20, ""},
		{"small RAM, relocatable", 16 << 20, func(f *fakeBz) { f.pref = 16 << 20; f.initSize = 4 << 20 }, 2 << 20, 20 << 20, "give at least 20 MiB"},
		{"relocatable below pref", 30 << 20, func(f *fakeBz) { f.pref = 28 << 20; f.initSize = 8 << 20 }, 2 << 20, 0, "give at least 36 MiB"},
		{"not relocatable at pref", 64 << 20, func(f *fakeBz) { f.relocatable = false }, 16 << 20, 24 << 20, ""},
		{"pref below 1 MiB", 64 << 20, func(f *fakeBz) { f.pref = 0x8000; f.align = 16 << 20 }, 16 << 20, 24 << 20, ""},
		{"no pref, 16 MiB aligned", 64 << 20, func(f *fakeBz) { f.pref = 0; f.align = 16 << 20 }, 16 << 20, 24 << 20, ""},
		{"no pref, not relocatable", 64 << 20, func(f *fakeBz) { f.pref = 0; f.relocatable = false }, 1 << 20, 9 << 20, ""},
		{"bad image", 64 << 20, func(f *fakeBz) { f.version = 0x0200 }, 0, 0, "2.12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validBz()
			tt.edit(&f)
			img := f.build()
			mem := newRAM(t, tt.ram)
			k, err := LoadBzImage(mem, img)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("LoadBzImage(%s) = %v, want error containing %q", tt.name, err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadBzImage(%s) = %v, want nil", tt.name, err)
			}
			if k.LoadAddr != tt.wantLoad || k.Entry != tt.wantLoad+0x200 || k.End != tt.wantEnd {
				t.Errorf("LoadBzImage(%s) = load %v entry %v end %v, want load %v entry %v end %v", tt.name, k.LoadAddr, k.Entry, k.End, tt.wantLoad, tt.wantLoad+0x200, tt.wantEnd)
			}
			got := make([]byte, 6)
			if err := mem.ReadAt(got, k.LoadAddr); err != nil || string(got) != "PMCODE" {
				t.Errorf("guest bytes at load address = %q, %v, want \"PMCODE\"", got, err)
			}
		})
	}
}

func TestLoadBzImageGivesEnoughRAM(t *testing.T) {
	// The RAM size the error asks for must be enough.
	f := validBz()
	f.initSize = 40 << 20
	img := f.build()
	_, err := LoadBzImage(newRAM(t, 32<<20), img)
	if err == nil || !strings.Contains(err.Error(), "give at least 56 MiB") {
		t.Fatalf("LoadBzImage(32 MiB) = %v, want \"give at least 56 MiB\"", err)
	}
	if _, err := LoadBzImage(newRAM(t, 56<<20), img); err != nil {
		t.Errorf("LoadBzImage(56 MiB) = %v, want nil", err)
	}
}

func TestLoadELF(t *testing.T) {
	text := bytes.Repeat([]byte{0x90}, 0x3000)
	tests := []struct {
		name      string
		elf       []byte
		wantEntry memory.GuestAddr
		wantLoad  memory.GuestAddr
		wantEnd   memory.GuestAddr
		wantError string
	}{
		{"physical entry", buildELF(0x1000000, fakeSegment{vaddr: 0xffffffff81000000, paddr: 0x1000000, data: text, memsz: 0x5000}), 0x1000000, 0x1000000, 0x1005000, ""},
		{"virtual entry", buildELF(0xffffffff81000100, fakeSegment{vaddr: 0xffffffff81000000, paddr: 0x1000000, data: text}), 0x1000100, 0x1000000, 0x1003000, ""},
		{"two segments", buildELF(0x200000, fakeSegment{vaddr: 0x200000, paddr: 0x200000, data: text}, fakeSegment{vaddr: 0x400000, paddr: 0x400000, data: text, memsz: 0x10000}), 0x200000, 0x200000, 0x410000, ""},
		{"entry outside", buildELF(0x5000000, fakeSegment{paddr: 0x1000000, data: text}), 0, 0, 0, "in no loaded segment"},
		{"past RAM", buildELF(0x1000000, fakeSegment{paddr: 0x1000000, data: text, memsz: 64 << 20}), 0, 0, 0, "give at least 80 MiB"},
		{"below 1 MiB", buildELF(0x7000, fakeSegment{paddr: 0x7000, data: text}), 0, 0, 0, "below 1 MiB"},
		{"paddr wraps", buildELF(0x1000000, fakeSegment{paddr: ^uint64(0) - 0x10, data: text}), 0, 0, 0, "not in RAM"},
		{"truncated", buildELF(0x1000000, fakeSegment{paddr: 0x1000000, data: text})[:0x200], 0, 0, 0, "runs past"},
		{"not ELF", []byte("MZ not an elf"), 0, 0, 0, "not an ELF"},
		{"no segments", buildELF(0x1000000), 0, 0, 0, "no PT_LOAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newRAM(t, 32<<20)
			// Dirty the bss area to check that it gets zeroed.
			if err := mem.WriteAt(bytes.Repeat([]byte{0xee}, 0x3000), 0x1003000); err != nil {
				t.Fatal(err)
			}
			k, err := LoadELF(mem, tt.elf)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("LoadELF(%s) = %v, want error containing %q", tt.name, err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadELF(%s) = %v, want nil", tt.name, err)
			}
			if k.Entry != tt.wantEntry || k.LoadAddr != tt.wantLoad || k.End != tt.wantEnd {
				t.Errorf("LoadELF(%s) = entry %v load %v end %v, want entry %v load %v end %v", tt.name, k.Entry, k.LoadAddr, k.End, tt.wantEntry, tt.wantLoad, tt.wantEnd)
			}
			got := make([]byte, k.End-k.LoadAddr)
			if err := mem.ReadAt(got, k.LoadAddr); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, text) {
				t.Errorf("LoadELF(%s): segment bytes not at %v", tt.name, k.LoadAddr)
			}
			if tt.name == "physical entry" && !bytes.Equal(got[0x3000:], make([]byte, 0x2000)) {
				t.Errorf("LoadELF(%s): bss [0x1003000, 0x1005000) not zeroed", tt.name)
			}
		})
	}
}

func FuzzLoadELF(f *testing.F) {
	f.Add(buildELF(0x1000000, fakeSegment{vaddr: 0xffffffff81000000, paddr: 0x1000000, data: []byte("text"), memsz: 0x100}))
	f.Add(buildELF(0x200000, fakeSegment{paddr: 0x200000, data: []byte("a")}, fakeSegment{paddr: 0x300000, data: []byte("b")}))
	host := make([]byte, 32<<20)
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: host})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, elf []byte) {
		k, err := LoadELF(mem, elf)
		if err != nil {
			return
		}
		if k.Entry < k.LoadAddr || k.Entry >= k.End || uint64(k.End) > uint64(len(host)) {
			t.Errorf("LoadELF = entry %v in [%v, %v), want inside and within %d bytes of RAM", k.Entry, k.LoadAddr, k.End, len(host))
		}
	})
}
