package boot

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/memory"
)

// walk translates a virtual address through 4-level page tables in guest
// memory (Intel SDM vol. 3, 4.5), handling 2 MiB and 1 GiB pages.
func walk(t *testing.T, mem *memory.Memory, cr3, va uint64) (uint64, bool) {
	t.Helper()
	table := cr3 &^ 0xfff
	for level := 3; level >= 0; level-- {
		shift := uint(12 + 9*level)
		b := make([]byte, 8)
		if err := mem.ReadAt(b, memory.GuestAddr(table+(va>>shift&0x1ff)*8)); err != nil {
			t.Fatalf("reading page table at %#x: %v", table, err)
		}
		e := binary.LittleEndian.Uint64(b)
		if e&ptePresent == 0 {
			return 0, false
		}
		frame := e & 0x000f_ffff_ffff_f000
		if level == 0 || (level <= 2 && e&ptePageSize != 0) {
			return frame&^(1<<shift-1) | va&(1<<shift-1), true
		}
		table = frame
	}
	return 0, false
}

func TestLongModeEntryPageTables(t *testing.T) {
	mem := newRAM(t, 64<<20)
	st, err := LongModeEntry(mem, 0x1000200, ZeroPageAddr)
	if err != nil {
		t.Fatalf("LongModeEntry = %v", err)
	}
	for _, va := range []uint64{0, 0x7000, 0x1000200, 0x3fff_ffff, 0xc000_0000, 0xfee0_0000, 0xffff_ffff} {
		pa, ok := walk(t, mem, st.CR3, va)
		if !ok || pa != va {
			t.Errorf("walk(%#x) = %#x, %v, want %#x, true (identity)", va, pa, ok, va)
		}
	}
	for _, va := range []uint64{1 << 32, 1 << 39, 0xffffffff81000000} {
		if pa, ok := walk(t, mem, st.CR3, va); ok {
			t.Errorf("walk(%#x) = %#x, true, want unmapped", va, pa)
		}
	}
}

// decodeDescriptor is the inverse of Segment.descriptor (Intel SDM vol. 3,
// 3.4.5); hi is the second 8 bytes of a system descriptor.
func decodeDescriptor(d, hi uint64) Segment {
	bit := func(n uint) bool { return d>>n&1 == 1 }
	s := Segment{
		Base:    d>>16&0xff_ffff | d>>56<<24 | hi<<32,
		Limit:   uint32(d&0xffff | d>>48&0xf<<16),
		Type:    uint8(d >> 40 & 0xf),
		S:       bit(44),
		DPL:     uint8(d >> 45 & 3),
		Present: bit(47),
		AVL:     bit(52),
		L:       bit(53),
		DB:      bit(54),
		G:       bit(55),
	}
	if s.G {
		s.Limit = s.Limit<<12 | 0xfff
	}
	return s
}

func TestLongModeEntryGDT(t *testing.T) {
	mem := newRAM(t, 64<<20)
	st, err := LongModeEntry(mem, 0x1000200, ZeroPageAddr)
	if err != nil {
		t.Fatalf("LongModeEntry = %v", err)
	}
	gdt := make([]byte, int(st.GDT.Limit)+1)
	if err := mem.ReadAt(gdt, memory.GuestAddr(st.GDT.Base)); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if le.Uint64(gdt) != 0 {
		t.Errorf("GDT entry 0 = %#x, want 0 (null)", le.Uint64(gdt))
	}
	for _, s := range []struct {
		name   string
		seg    Segment
		system bool
	}{{"CS", st.CS, false}, {"DS", st.DS, false}, {"SS", st.SS, false}, {"TR", st.TR, true}} {
		var hi uint64
		if s.system {
			hi = le.Uint64(gdt[s.seg.Selector+8:])
		}
		got := decodeDescriptor(le.Uint64(gdt[s.seg.Selector:]), hi)
		want := s.seg
		want.Selector = 0
		if got != want {
			t.Errorf("GDT[%#x] for %s decodes to %+v, want %+v", s.seg.Selector, s.name, got, want)
		}
	}
	// Spot-check the encodings against the well-known flat descriptors.
	if got := le.Uint64(gdt[BootCS:]); got != 0x00af9b000000ffff {
		t.Errorf("GDT[__BOOT_CS] = %#x, want 0x00af9b000000ffff", got)
	}
	if got := le.Uint64(gdt[BootDS:]); got != 0x00cf93000000ffff {
		t.Errorf("GDT[__BOOT_DS] = %#x, want 0x00cf93000000ffff", got)
	}
}

func TestLongModeEntryRegisters(t *testing.T) {
	mem := newRAM(t, 64<<20)
	st, err := LongModeEntry(mem, 0x1000200, ZeroPageAddr)
	if err != nil {
		t.Fatalf("LongModeEntry = %v", err)
	}
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"RIP", st.RIP, 0x1000200},
		{"RSI", st.RSI, uint64(ZeroPageAddr)},
		{"RSP", st.RSP, uint64(StackTop)},
		{"RFLAGS", st.RFLAGS, 0x2},
		{"CR0", st.CR0, 0x8000_0011},
		{"CR3", st.CR3, uint64(PML4Addr)},
		{"CR4", st.CR4, 0x20},
		{"EFER", st.EFER, 0x500},
		{"CS", uint64(st.CS.Selector), 0x10},
		{"DS", uint64(st.DS.Selector), 0x18},
		{"ES", uint64(st.ES.Selector), 0x18},
		{"SS", uint64(st.SS.Selector), 0x18},
		{"TR type", uint64(st.TR.Type), 0xb},
		{"GDT limit", uint64(st.GDT.Limit), GDTSize - 1},
		{"IDT limit", uint64(st.IDT.Limit), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("LongModeEntry().%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
	if !st.CS.L || st.CS.DB || !st.LDT.Unusable {
		t.Errorf("LongModeEntry() CS.L %v CS.DB %v LDT.Unusable %v, want true false true", st.CS.L, st.CS.DB, st.LDT.Unusable)
	}
}

func TestLongModeEntryErrors(t *testing.T) {
	high, err := memory.FromRegions(memory.Region{Start: 1 << 20, Host: make([]byte, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		mem   *memory.Memory
		entry uint64
	}{
		{"entry above 4 GiB", newRAM(t, 1<<20), 1 << 32},
		{"no RAM at 0", high, 0x100200},
	}
	for _, tt := range tests {
		if _, err := LongModeEntry(tt.mem, tt.entry, ZeroPageAddr); err == nil {
			t.Errorf("LongModeEntry(%s) = nil error, want one", tt.name)
		}
	}
}
