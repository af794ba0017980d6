package kvm

import "testing"

// TestDefaultIRQRoutes checks the table against KVM's default_routing: the
// legacy GSIs drive a PIC pin and the IOAPIC pin of the same number, the
// PCI ones only the IOAPIC.
func TestDefaultIRQRoutes(t *testing.T) {
	type pin struct{ chip, pin uint32 }
	byGSI := map[uint32][]pin{}
	for _, r := range DefaultIRQRoutes() {
		if r.Kind != IRQRouteIRQChip {
			t.Fatalf("DefaultIRQRoutes has %v, want only irqchip routes", r)
		}
		byGSI[r.GSI] = append(byGSI[r.GSI], pin{r.Chip, r.Pin})
	}
	tests := []struct {
		gsi  uint32
		want []pin
	}{
		{0, []pin{{IRQChipIOAPIC, 0}, {IRQChipPICMaster, 0}}},
		{4, []pin{{IRQChipIOAPIC, 4}, {IRQChipPICMaster, 4}}},
		{8, []pin{{IRQChipIOAPIC, 8}, {IRQChipPICSlave, 0}}},
		{15, []pin{{IRQChipIOAPIC, 15}, {IRQChipPICSlave, 7}}},
		{16, []pin{{IRQChipIOAPIC, 16}}},
		{23, []pin{{IRQChipIOAPIC, 23}}},
		{24, nil},
	}
	for _, tt := range tests {
		got := byGSI[tt.gsi]
		if len(got) != len(tt.want) {
			t.Errorf("DefaultIRQRoutes for GSI %d = %v, want %v", tt.gsi, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("DefaultIRQRoutes for GSI %d = %v, want %v", tt.gsi, got, tt.want)
			}
		}
	}
	if n := len(DefaultIRQRoutes()); n != 16*2+8 {
		t.Errorf("len(DefaultIRQRoutes()) = %d, want 40", n)
	}
}

func TestIRQRoutingWords(t *testing.T) {
	buf := newIRQRouting([]IRQRoute{{GSI: 24, Kind: IRQRouteMSI, Addr: 0xFEE0_0000, Data: 0x41}})
	want := []uint64{1, 24 | 2<<32, 0, 0xFEE0_0000, 0x41, 0, 0}
	if len(buf) != len(want) {
		t.Fatalf("newIRQRouting(1 msi route) = %#x, want %#x", buf, want)
	}
	for i := range want {
		if buf[i] != want[i] {
			t.Errorf("newIRQRouting(1 msi route) word %d = %#x, want %#x", i, buf[i], want[i])
		}
	}
	if got := newIRQRouting(nil); len(got) != 1 || got[0] != 0 {
		t.Errorf("newIRQRouting(nil) = %#x, want [0]", got)
	}
}
