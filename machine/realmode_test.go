package machine

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/govmm/govmm/boot"
)

// realModeELF builds a minimal ELF64 executable with one PT_LOAD segment
// of code at paddr (memsz bytes in memory), entered at entry.
func realModeELF(class elf.Class, machine elf.Machine, paddr, entry uint64, code []byte, memsz uint64) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	if class == elf.ELFCLASS32 {
		hdr := elf.Header32{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Entry: uint32(entry),
			Phoff: 52, Ehsize: 52, Phentsize: 32, Phnum: 1}
		copy(hdr.Ident[:], elf.ELFMAG)
		hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), 1
		binary.Write(&b, le, hdr)
		binary.Write(&b, le, elf.Prog32{Type: uint32(elf.PT_LOAD), Off: 84, Vaddr: uint32(paddr), Paddr: uint32(paddr),
			Filesz: uint32(len(code)), Memsz: uint32(memsz), Flags: uint32(elf.PF_X | elf.PF_R)})
	} else {
		hdr := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: 1, Entry: entry,
			Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1}
		copy(hdr.Ident[:], elf.ELFMAG)
		hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
		binary.Write(&b, le, hdr)
		binary.Write(&b, le, elf.Prog64{Type: uint32(elf.PT_LOAD), Off: 120, Vaddr: paddr, Paddr: paddr,
			Filesz: uint64(len(code)), Memsz: memsz, Flags: uint32(elf.PF_X | elf.PF_R)})
	}
	b.Write(code)
	return b.Bytes()
}

var hlt = []byte{0xf4}

func TestParseRealModeImage(t *testing.T) {
	tests := []struct {
		name    string
		image   []byte
		want    string // an error, or "" for success
		entry   uint64
		segment uint64
	}{
		{"ELF64 boot sector", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x7c00, 0x7c00, hlt, 0x1000), "", 0x7c00, 0x7c00},
		{"ELF32", realModeELF(elf.ELFCLASS32, elf.EM_386, 0x1000, 0x1000, hlt, 1), "", 0x1000, 0x1000},
		{"over the BIOS data area", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x400, 0x400, hlt, 1), "outside conventional memory", 0, 0},
		{"into the EBDA", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x9f000, 0x9f000, hlt, 0x1000), "outside conventional memory", 0, 0},
		{"above 1 MiB", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x100000, 0x100000, hlt, 1), "outside conventional memory", 0, 0},
		{"entry outside", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x7c00, 0x8000, hlt, 1), "entry point 0x8000", 0, 0},
		{"file size over memory size", realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x7c00, 0x7c00, []byte{1, 2}, 1), "p_filesz", 0, 0},
		{"not x86", realModeELF(elf.ELFCLASS64, elf.EM_AARCH64, 0x7c00, 0x7c00, hlt, 1), "want an x86", 0, 0},
		{"not ELF", []byte("MZ a DOS program"), "needs an ELF file", 0, 0},
	}
	for _, tt := range tests {
		img, err := ParseRealModeImage(tt.image)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: ParseRealModeImage() = %v, want an error containing %q", tt.name, err, tt.want)
			}
			continue
		}
		if err != nil || img.Entry != tt.entry || len(img.Segments) != 1 || img.Segments[0].Addr != tt.segment {
			t.Errorf("%s: ParseRealModeImage() = %+v, %v, want entry %#x, one segment at %#x", tt.name, img, err, tt.entry, tt.segment)
		}
	}
}

func TestRealModeEntry(t *testing.T) {
	tests := []struct {
		entry  uint64
		cs     uint16
		ip     uint64
		csBase uint64
	}{
		{0x7c00, 0, 0x7c00, 0},
		{0x12345, 0x1000, 0x2345, 0x10000},
		{0x9fbff, 0x9000, 0xfbff, 0x90000},
	}
	for _, tt := range tests {
		e := RealModeEntry(tt.entry)
		if e.CS.Selector != tt.cs || e.RIP != tt.ip || e.CS.Base != tt.csBase || e.CS.Base+e.RIP != tt.entry {
			t.Errorf("RealModeEntry(%#x) = %04x:%04x (base %#x), want %04x:%04x (base %#x)", tt.entry, e.CS.Selector, e.RIP, e.CS.Base, tt.cs, tt.ip, tt.csBase)
		}
		if e.CR0&boot.CR0PE != 0 || e.EFER != 0 || e.RFLAGS != boot.RFLAGSReserved || e.IDT.Base != 0 || e.IDT.Limit != 0x3ff {
			t.Errorf("RealModeEntry(%#x): cr0=%#x efer=%#x rflags=%#x idt=%+v, want real mode with interrupts off and the IVT at 0", tt.entry, e.CR0, e.EFER, e.RFLAGS, e.IDT)
		}
	}
}

// FuzzParseRealModeImage: whatever the bytes, the parser returns an error
// or segments that lie in conventional memory and within the file, with
// the entry point inside one of them.
func FuzzParseRealModeImage(f *testing.F) {
	f.Add(realModeELF(elf.ELFCLASS64, elf.EM_X86_64, 0x7c00, 0x7c00, hlt, 0x1000))
	f.Add(realModeELF(elf.ELFCLASS32, elf.EM_386, 0x1000, 0x1001, []byte{0x90, 0xf4}, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := ParseRealModeImage(b)
		if err != nil {
			return
		}
		in := false
		for _, s := range img.Segments {
			if s.Addr < uint64(realModeLow) || s.Addr+s.MemSize > uint64(realModeHigh) || uint64(len(s.Data)) > s.MemSize {
				t.Fatalf("segment at %#x, %d bytes of %#x, is outside conventional memory or overfull", s.Addr, len(s.Data), s.MemSize)
			}
			in = in || img.Entry >= s.Addr && img.Entry < s.Addr+s.MemSize
		}
		if !in {
			t.Fatalf("entry %#x is in no segment", img.Entry)
		}
	})
}
