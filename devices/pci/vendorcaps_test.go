package pci

import (
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
)

// TestVendorCapsAndNarrowDoorbells: several vendor capabilities chain in
// order before MSI-X (virtio-pci's layout), and a 2-byte doorbell is
// registered with its width.
func TestVendorCapsAndNarrowDoorbells(t *testing.T) {
	tb := newTestBus(t)
	rang := 0
	fn, err := NewFunction(Config{
		VendorID: VendorID, DeviceID: 0x1042, Class: ClassOther,
		BARs: [BARCount]BAR{0: {Kind: BARMem32, Size: 0x4000, Dev: zeroDevice{},
			Doorbells: []Doorbell{{Offset: 0x3002, Size: 2, Ring: func() { rang++ }}}}},
		MSIX:       &MSIXConfig{Vectors: 2, BAR: 0, TableOffset: 0x2000, PBAOffset: 0x2800},
		VendorCap:  []byte("a"),
		VendorCaps: [][]byte{[]byte("bb"), []byte("ccc")},
	})
	if err != nil {
		t.Fatal(err)
	}
	slot, err := tb.Add(fn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := tb.ecamRead(slot, RegCapPtr, 1); p != 0; p = tb.ecamRead(slot, uint64(p)+1, 1) {
		if len(got) > 8 {
			t.Fatal("capability list does not end")
		}
		id := tb.ecamRead(slot, uint64(p), 1)
		if id != CapIDVendor {
			got = append(got, "msix")
			continue
		}
		var s []byte
		for i := uint64(3); i < uint64(tb.ecamRead(slot, uint64(p)+2, 1)); i++ {
			s = append(s, byte(tb.ecamRead(slot, uint64(p)+i, 1)))
		}
		got = append(got, string(s))
	}
	if strings.Join(got, " ") != "a bb ccc msix" {
		t.Errorf("capabilities = %q, want [a bb ccc msix]", got)
	}
	tb.ecamWrite(slot, RegCommand, 2, CmdMemory)
	b := tb.irqs.bell(devices.MMIO, fn.BARAddress(0)+0x3002)
	if b == nil || b.size != 2 {
		t.Fatalf("doorbell = %+v, want one of 2 bytes", b)
	}
	b.ring()
	if rang != 1 {
		t.Errorf("ring ran %d times, want 1", rang)
	}
	bad := []Doorbell{{Offset: 0x3001, Size: 2, Ring: func() {}}, {Offset: 0x3000, Size: 3, Ring: func() {}}, {Offset: 0x3ffe, Size: 4, Ring: func() {}}}
	for _, d := range bad {
		_, err := NewFunction(Config{BARs: [BARCount]BAR{0: {Kind: BARMem32, Size: 0x4000, Dev: zeroDevice{}, Doorbells: []Doorbell{d}}}})
		if err == nil {
			t.Errorf("NewFunction with doorbell %+v = nil error, want a refusal", d)
		}
	}
}
