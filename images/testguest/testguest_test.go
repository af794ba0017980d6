package testguest

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce   sync.Once
	builtGuests Guests
	buildErr    error
)

// buildForTest builds the guests once per test binary into the repository's
// git-ignored .cache folder, or skips if there is no C toolchain.
func buildForTest(t *testing.T) Guests {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed (apt-get install gcc binutils): cannot build the test guests")
	}
	buildOnce.Do(func() { builtGuests, buildErr = Build(testCacheDir()) })
	if buildErr != nil {
		t.Fatalf("Build() = %v", buildErr)
	}
	return builtGuests
}

// testCacheDir is <repo>/.cache, found by walking up to go.mod.
func testCacheDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return os.TempDir()
	}
	for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache")
		}
	}
	return os.TempDir()
}

func TestHashes(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"FNV1a(empty)", FNV1a(nil), 0x811c9dc5},
		{"FNV1a(a)", FNV1a([]byte("a")), 0xe40c292c},
		{"FNV1a(foobar)", FNV1a([]byte("foobar")), 0xbf9cf968},
		{"Checksum(0)", Checksum(0), 0x811c9dc5},
		// Printed by the guest under QEMU for the default loops=1000000.
		{"Checksum(1000000)", Checksum(1000000), 0x271c7045},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#08x, want %#08x", tt.name, tt.got, tt.want)
		}
	}
}

func TestBuildIsCached(t *testing.T) {
	g := buildForTest(t)
	again, err := Build(filepath.Dir(g.Dir))
	if err != nil || again.Dir != g.Dir {
		t.Fatalf("Build() again = %v, %v, want the cached %s", again.Dir, err, g.Dir)
	}
	for _, p := range append([]string{g.ELF, g.BzImage}, mapValues(g.BzImages)...) {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("Build() result %s: %v (size %v)", p, err, st)
		}
	}
}

func mapValues(m map[Compression]string) []string {
	var v []string
	for _, c := range Compressions {
		v = append(v, m[c])
	}
	return v
}

func TestELF(t *testing.T) {
	g := buildForTest(t)
	f, err := elf.Open(g.ELF)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		t.Errorf("ELF kind = %v %v %v, want ELFCLASS64 EM_X86_64 ET_EXEC", f.Class, f.Machine, f.Type)
	}
	entry64, err := symbol(g.ELF, "entry64")
	if err != nil {
		t.Fatal(err)
	}
	if f.Entry != entry64 || f.Entry != LoadAddr {
		t.Errorf("e_entry = %#x, want entry64 = %#x = LoadAddr", f.Entry, entry64)
	}
	var loads int
	var pvhEntry uint64
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			if loads == 0 && p.Paddr != LoadAddr {
				t.Errorf("first PT_LOAD paddr = %#x, want %#x", p.Paddr, LoadAddr)
			}
			if p.Paddr < LoadAddr || p.Paddr != p.Vaddr || p.Filesz > p.Memsz {
				t.Errorf("PT_LOAD paddr %#x vaddr %#x filesz %#x memsz %#x: want identity-mapped, from 1 MiB", p.Paddr, p.Vaddr, p.Filesz, p.Memsz)
			}
			loads++
		case elf.PT_NOTE:
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			pvhEntry = findXenNote(b, 18)
		}
	}
	if loads == 0 {
		t.Error("no PT_LOAD segments")
	}
	want, err := symbol(g.ELF, "entry_pvh32")
	if err != nil {
		t.Fatal(err)
	}
	if pvhEntry != want {
		t.Errorf("XEN_ELFNOTE_PHYS32_ENTRY = %#x, want entry_pvh32 = %#x", pvhEntry, want)
	}
}

// findXenNote returns the descriptor (a 4-byte address) of a "Xen" note.
func findXenNote(b []byte, typ uint32) uint64 {
	le := binary.LittleEndian
	for len(b) >= 12 {
		namesz, descsz, ntype := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:])
		name := b[12 : 12+namesz]
		desc := b[12+(namesz+3)&^3:]
		if string(name) == "Xen\x00" && ntype == typ && descsz >= 4 {
			return uint64(le.Uint32(desc))
		}
		b = desc[(descsz+3)&^3:]
	}
	return 0
}

func TestParseCPUID(t *testing.T) {
	var out strings.Builder
	for i, p := range CPUIDProbes {
		fmt.Fprintf(&out, "cpuid ring0 %08x.%02x eax=%08x ebx=00000002 ecx=00000003 edx=00000004\r\n", p.Leaf, p.Subleaf, i)
		fmt.Fprintf(&out, "cpuid ring3 %08x.%02x eax=%08x ebx=00000002 ecx=00000003 edx=ffffffff\n", p.Leaf, p.Subleaf, i)
	}
	r0, r3, err := ParseCPUID(strings.ReplaceAll(out.String(), "\r", ""))
	if err != nil {
		t.Fatalf("ParseCPUID() = %v", err)
	}
	if got, want := r0[CPUIDLeaf{7, 1}], (CPUIDRegs{2, 2, 3, 4}); got != want {
		t.Errorf("ParseCPUID() ring 0 leaf 7.1 = %+v, want %+v", got, want)
	}
	if got, want := r3[CPUIDLeaf{0x4000_0000, 0}], (CPUIDRegs{6, 2, 3, 0xffff_ffff}); got != want {
		t.Errorf("ParseCPUID() ring 3 leaf 0x40000000 = %+v, want %+v", got, want)
	}
	if _, _, err := ParseCPUID("cpuid ring0 00000001.00 eax=00000000 ebx=00000000 ecx=00000000 edx=00000000\n"); err == nil {
		t.Error("ParseCPUID(one line) = nil error, want one naming the missing leaves")
	}
}
