package boot

import (
	"testing"

	"github.com/govmm/govmm/memory"
)

type span struct {
	name       string
	start, end memory.GuestAddr
}

// fixedRegions lists every fixed region of the layout. Windows that contain
// other regions (the MMIO hole, the platform window) are checked separately.
func fixedRegions() []span {
	return []span{
		{"IVT+BDA", RealModeIVT, RealModeIVTEnd},
		{"GDT", GDTAddr, GDTAddr + GDTSize},
		{"boot TSS", BootTSSAddr, BootTSSAddr + BootTSSSize},
		{"zero page", ZeroPageAddr, ZeroPageAddr + ZeroPageSize},
		{"stack", StackStart, StackEnd},
		{"PML4", PML4Addr, PML4Addr + PageSize},
		{"PDPT", PDPTAddr, PDPTAddr + PageSize},
		{"PDs", PDAddr, PageTablesEnd},
		{"cmdline", CmdlineAddr, CmdlineAddr + CmdlineMax},
		{"EBDA", EBDAStart, LegacyHoleStart},
		{"VGA window and option ROMs", LegacyHoleStart, BIOSAreaStart},
		{"ACPI RSDP", RSDPAddr, RSDPAddr + RSDPSize},
		{"ACPI tables", ACPITablesAddr, ACPITablesAddr + memory.GuestAddr(ACPITablesSize)},
		{"PCI 32-bit window", PCIMMIO32Start, PCIMMIO32Start + PCIMMIO32Size},
		{"serial MMIO", SerialMMIO, SerialMMIO + SerialMMIOSize},
		{"debug-exit MMIO", DebugExitMMIO, DebugExitMMIO + DebugExitMMIOSize},
		{"PCIe ECAM", PCIeECAMStart, PCIeECAMStart + PCIeECAMSize},
		{"IOAPIC", IOAPICAddr, IOAPICAddr + IOAPICSize},
		{"LAPIC", LAPICAddr, LAPICAddr + LAPICSize},
		{"KVM identity map", KVMIdentityMapAddr, KVMIdentityMapAddr + KVMIdentityMapSize},
		{"KVM TSS", KVMTSSAddr, KVMTSSAddr + KVMTSSSize},
	}
}

func TestLayoutNoOverlap(t *testing.T) {
	rs := fixedRegions()
	for i, a := range rs {
		if a.start >= a.end {
			t.Errorf("region %s = [%v, %v), want start < end", a.name, a.start, a.end)
		}
		for _, b := range rs[i+1:] {
			if a.start < b.end && b.start < a.end {
				t.Errorf("regions %s [%v, %v) and %s [%v, %v) overlap", a.name, a.start, a.end, b.name, b.start, b.end)
			}
		}
	}
}

func TestLayoutContainment(t *testing.T) {
	type within struct {
		inner, outer span
	}
	low := span{"low boot area", 0, EBDAStart}
	hole := span{"MMIO hole", MMIOHoleStart, MMIOHoleEnd}
	platform := span{"platform MMIO", PlatformMMIOStart, PlatformMMIOStart + PlatformMMIOSize}
	var tests []within
	for _, r := range fixedRegions() {
		switch {
		case r.end <= EBDAStart:
			tests = append(tests, within{r, low})
		case r.start >= MMIOHoleStart:
			tests = append(tests, within{r, hole})
		}
	}
	tests = append(tests,
		within{span{"serial MMIO", SerialMMIO, SerialMMIO + SerialMMIOSize}, platform},
		within{span{"debug-exit MMIO", DebugExitMMIO, DebugExitMMIO + DebugExitMMIOSize}, platform},
		within{platform, hole},
		within{span{"ACPI RSDP", RSDPAddr, RSDPAddr + RSDPSize}, span{"legacy hole", LegacyHoleStart, HighMemStart}},
		within{span{"ACPI tables", ACPITablesAddr, ACPITablesAddr + memory.GuestAddr(ACPITablesSize)}, span{"BIOS area", BIOSAreaStart, HighMemStart}},
		within{span{"stack top", StackTop - 16, StackTop}, span{"stack", StackStart, StackEnd}},
	)
	for _, tt := range tests {
		if tt.inner.start < tt.outer.start || tt.inner.end > tt.outer.end {
			t.Errorf("%s [%v, %v) lies outside %s [%v, %v)", tt.inner.name, tt.inner.start, tt.inner.end,
				tt.outer.name, tt.outer.start, tt.outer.end)
		}
	}
}

func TestLayoutValues(t *testing.T) {
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"PML4Addr % PageSize", uint64(PML4Addr % PageSize), 0},
		{"PDPTAddr % PageSize", uint64(PDPTAddr % PageSize), 0},
		{"PDAddr % PageSize", uint64(PDAddr % PageSize), 0},
		{"ZeroPageAddr % PageSize", uint64(ZeroPageAddr % PageSize), 0},
		{"StackTop % 16", uint64(StackTop % 16), 0},
		{"IdentityMapSize", IdentityMapSize, 4 << 30},
		{"MMIOHoleStart", uint64(MMIOHoleStart), 3 << 30},
		{"PCIeECAMStart % PCIeECAMSize", uint64(PCIeECAMStart % PCIeECAMSize), 0},
		{"KernelLoad", uint64(KernelLoad), 1 << 20},
		{"RSDPAddr % 16", uint64(RSDPAddr % 16), 0},
		{"ACPITablesAddr + ACPITablesSize", uint64(ACPITablesAddr) + ACPITablesSize, uint64(HighMemStart)},
		{"BootCS", uint64(BootCS), 2 * 8},
		{"BootDS", uint64(BootDS), 3 * 8},
		{"BootTSS+16 <= GDTSize", uint64(BootTSS) + 16, GDTSize},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestPCIMMIO64(t *testing.T) {
	tests := []struct {
		ramEnd    memory.GuestAddr
		wantStart memory.GuestAddr
	}{
		{512 << 20, 4 << 30},           // all RAM below the hole
		{4 << 30, 4 << 30},             // RAM ends at 4 GiB exactly
		{5<<30 + 1, 6 << 30},           // aligned up to the next GiB
		{1<<40 + 1<<30, 1<<40 + 1<<30}, // 1 TiB of RAM above the hole
	}
	for _, tt := range tests {
		start, size := PCIMMIO64(tt.ramEnd)
		if start != tt.wantStart || size != PCIMMIO64Size {
			t.Errorf("PCIMMIO64(%v) = %v, %#x, want %v, %#x", tt.ramEnd, start, size, tt.wantStart, PCIMMIO64Size)
		}
	}
}

func TestPCIINTxGSI(t *testing.T) {
	tests := []struct{ slot, pin, want int }{{0, 0, 16}, {0, 3, 19}, {1, 0, 17}, {1, 3, 16}, {31, 1, 16}}
	for _, tt := range tests {
		if got := PCIINTxGSI(tt.slot, tt.pin); got != tt.want {
			t.Errorf("PCIINTxGSI(%d, %d) = %d, want %d", tt.slot, tt.pin, got, tt.want)
		}
	}
}
