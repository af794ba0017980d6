package kvm

import (
	"testing"
	"unsafe"
)

// TestIRQRoutingMatchesStructs checks that newIRQRouting puts each field
// where struct kvm_irq_routing and its entries have it: the words it
// builds equal the bytes of the mirrored structs filled field by field.
func TestIRQRoutingMatchesStructs(t *testing.T) {
	routes := []IRQRoute{
		{GSI: 18, Kind: IRQRouteIRQChip, Chip: IRQChipIOAPIC, Pin: 18},
		{GSI: 24, Kind: IRQRouteMSI, Addr: 0x1_FEE0_1000, Data: 0x4031},
	}
	buf := newIRQRouting(routes)
	if got, want := len(buf), irqRoutingHeadWords+2*irqRoutingEntryWords; got != want {
		t.Fatalf("len(newIRQRouting(2 routes)) = %d words, want %d", got, want)
	}
	head := irqRoutingHeader{NR: 2}
	chip := irqRoutingEntry{GSI: 18, Type: uint32(IRQRouteIRQChip)}
	c := irqRoutingIRQChip{IRQChip: IRQChipIOAPIC, Pin: 18}
	msiEntry := irqRoutingEntry{GSI: 24, Type: uint32(IRQRouteMSI)}
	m := irqRoutingMSI{AddressLo: 0xFEE0_1000, AddressHi: 1, Data: 0x4031}
	// Safe: each source is a live local of the size given; the union U is
	// 32 bytes, larger than either member.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&chip.U)), 32), unsafe.Slice((*byte)(unsafe.Pointer(&c)), unsafe.Sizeof(c)))
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&msiEntry.U)), 32), unsafe.Slice((*byte)(unsafe.Pointer(&m)), unsafe.Sizeof(m)))

	var want []byte
	want = append(want, unsafe.Slice((*byte)(unsafe.Pointer(&head)), unsafe.Sizeof(head))...)
	want = append(want, unsafe.Slice((*byte)(unsafe.Pointer(&chip)), unsafe.Sizeof(chip))...)
	want = append(want, unsafe.Slice((*byte)(unsafe.Pointer(&msiEntry)), unsafe.Sizeof(msiEntry))...)
	got := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("newIRQRouting byte %d = %#x, want %#x as in the mirrored structs", i, got[i], want[i])
		}
	}
}
