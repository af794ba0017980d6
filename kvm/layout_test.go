package kvm

import (
	"testing"
	"unsafe"
)

// The sizes, offsets, ioctl numbers and constants this package mirrors are
// checked against the host's <linux/kvm.h> by TestABIMatchesHeader
// (abi_header_test.go, testdata/kvmlayout.c). The tests here check that
// the code which encodes those structs by hand puts each field where the
// mirrored struct has it.

// TestFlexArrayMatchesStructs checks that the word-by-word encoders put each
// field where the mirrored struct (and so the C struct) has it.
func TestFlexArrayMatchesStructs(t *testing.T) {
	c := CPUIDEntry{Function: 1, Index: 2, Flags: 3, EAX: 4, EBX: 5, ECX: 6, EDX: 7}
	cbuf := newCPUID2([]CPUIDEntry{c}, 1)
	// Safe: CPUIDEntry is 40 bytes of u32s (TestABIMatchesHeader), read as 10 words.
	cwords := unsafe.Slice((*uint32)(unsafe.Pointer(&c)), cpuidEntryWords)
	for i, w := range cwords {
		if got := cbuf[cpuid2HeadWords+i]; got != w {
			t.Errorf("newCPUID2 word %d = %#x, want %#x as in CPUIDEntry", cpuid2HeadWords+i, got, w)
		}
	}
	m := MSREntry{Index: 0xc0000080, Data: 0xd01}
	mbuf := newMSRs([]MSREntry{m})
	// Safe: MSREntry is 16 bytes, 8-aligned (TestABIMatchesHeader), read as 2 words.
	mwords := unsafe.Slice((*uint64)(unsafe.Pointer(&m)), msrEntryWords)
	for i, w := range mwords {
		if got := mbuf[msrsHeadWords+i]; got != w {
			t.Errorf("newMSRs word %d = %#x, want %#x as in MSREntry", msrsHeadWords+i, got, w)
		}
	}
}

// TestPICStateBytes checks that IRQChip.PIC and SetPIC put each PICState
// field at its offset in the mirrored struct (and so, by
// TestABIMatchesHeader, in struct kvm_pic_state).
func TestPICStateBytes(t *testing.T) {
	var p PICState
	fields := []struct {
		name string
		f    *uint8
		off  uintptr
	}{
		{"LastIRR", &p.LastIRR, unsafe.Offsetof(p.LastIRR)},
		{"IRR", &p.IRR, unsafe.Offsetof(p.IRR)},
		{"IMR", &p.IMR, unsafe.Offsetof(p.IMR)},
		{"ISR", &p.ISR, unsafe.Offsetof(p.ISR)},
		{"PriorityAdd", &p.PriorityAdd, unsafe.Offsetof(p.PriorityAdd)},
		{"IRQBase", &p.IRQBase, unsafe.Offsetof(p.IRQBase)},
		{"ReadRegSelect", &p.ReadRegSelect, unsafe.Offsetof(p.ReadRegSelect)},
		{"Poll", &p.Poll, unsafe.Offsetof(p.Poll)},
		{"SpecialMask", &p.SpecialMask, unsafe.Offsetof(p.SpecialMask)},
		{"InitState", &p.InitState, unsafe.Offsetof(p.InitState)},
		{"AutoEOI", &p.AutoEOI, unsafe.Offsetof(p.AutoEOI)},
		{"RotateOnAutoEOI", &p.RotateOnAutoEOI, unsafe.Offsetof(p.RotateOnAutoEOI)},
		{"SpecialFullyNestedMode", &p.SpecialFullyNestedMode, unsafe.Offsetof(p.SpecialFullyNestedMode)},
		{"Init4", &p.Init4, unsafe.Offsetof(p.Init4)},
		{"ELCR", &p.ELCR, unsafe.Offsetof(p.ELCR)},
		{"ELCRMask", &p.ELCRMask, unsafe.Offsetof(p.ELCRMask)},
	}
	if len(fields) != int(unsafe.Sizeof(p)) {
		t.Fatalf("the table has %d fields, PICState %d bytes: name every field", len(fields), unsafe.Sizeof(p))
	}
	for _, f := range fields {
		p = PICState{}
		*f.f = 0xa5
		var c IRQChip
		c.SetPIC(p)
		for i, b := range c.Chip[:unsafe.Sizeof(p)] {
			want := byte(0)
			if uintptr(i) == f.off {
				want = 0xa5
			}
			if b != want {
				t.Errorf("SetPIC(%s = 0xa5): Chip[%d] = %#02x, want 0xa5 only at offset %d", f.name, i, b, f.off)
			}
		}
		if got := c.PIC(); got != p {
			t.Errorf("PIC() after SetPIC(%s = 0xa5) = %+v, want %+v", f.name, got, p)
		}
	}
}
