package vcpu

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

// TestTopologyCPUID checks that every CPUID leaf that tells topology
// agrees with Topology: the APIC ID where a leaf has one, the core count
// and the bits that number the cores.
func TestTopologyCPUID(t *testing.T) {
	sig := uint32(kvm.CPUIDFlagSignificantIndex)
	supported := []kvm.CPUIDEntry{
		{Function: 0x1, EBX: 0xFF00_0800},
		{Function: 0x4, Index: 0, Flags: sig, EAX: 0xFC00_4121},        // L1 data, level 1
		{Function: 0x4, Index: 3, Flags: sig, EAX: 0xFC00_4163},        // L3, level 3
		{Function: 0xB, Index: 0, Flags: sig, ECX: 0x100},              // SMT level
		{Function: 0xB, Index: 1, Flags: sig, ECX: 0x201},              // core level
		{Function: 0xB, Index: 2, Flags: sig, ECX: 0x2},                // invalid level
		{Function: 0x8000_0008, EAX: 0x3030, ECX: 0xFFFF_F0FF},         // address sizes, NC, ApicIdSize
		{Function: 0x8000_001E, EAX: 7, EBX: 0xFFFF_FFFF, ECX: 0x0707}, // AMD topology
	}
	for _, tt := range []struct{ cores, cpu int }{{1, 0}, {4, 3}, {8, 5}, {32, 31}} {
		topo := Topology{Cores: tt.cores}
		id := topo.APICID(tt.cpu)
		got := BuildCPUID(supported, CPUIDOptions{ID: int(id), Topology: topo})
		leaf := func(fn, index uint32) kvm.CPUIDEntry {
			for _, e := range got {
				if e.Function == fn && e.Index == index {
					return e
				}
			}
			t.Fatalf("BuildCPUID lost leaf %#x.%d", fn, index)
			return kvm.CPUIDEntry{}
		}
		bits := uint32(bitsFor(uint32(tt.cores)))
		checks := []struct {
			what      string
			got, want uint32
		}{
			{"leaf 1 EBX[31:24] initial APIC ID", leaf(1, 0).EBX >> 24, id},
			{"leaf 1 EBX[23:16] logical processors", leaf(1, 0).EBX >> 16 & 0xFF, uint32(tt.cores)},
			{"leaf 4 EAX[31:26] cores - 1", leaf(4, 0).EAX >> 26, uint32(tt.cores - 1)},
			{"leaf 4 L1 EAX[25:14] sharing - 1", leaf(4, 0).EAX >> 14 & 0xFFF, 0},
			{"leaf 4 L3 EAX[25:14] sharing - 1", leaf(4, 3).EAX >> 14 & 0xFFF, uint32(tt.cores - 1)},
			{"leaf 4 EAX[13:0] kept", leaf(4, 3).EAX & 0x3FFF, 0x0163},
			{"leaf 0xB.0 EDX x2APIC ID", leaf(0xB, 0).EDX, id},
			{"leaf 0xB.1 EAX shift", leaf(0xB, 1).EAX, bits},
			{"leaf 0xB.1 EBX cores", leaf(0xB, 1).EBX, uint32(tt.cores)},
			{"leaf 0x8000_0008 ECX[7:0] NC", leaf(0x8000_0008, 0).ECX & 0xFF, uint32(tt.cores - 1)},
			{"leaf 0x8000_0008 ECX[15:12] ApicIdSize", leaf(0x8000_0008, 0).ECX >> 12 & 0xF, bits},
			{"leaf 0x8000_0008 EAX kept", leaf(0x8000_0008, 0).EAX, 0x3030},
			{"leaf 0x8000_001E EAX extended APIC ID", leaf(0x8000_001E, 0).EAX, id},
			{"leaf 0x8000_001E EBX[7:0] core ID, [15:8] threads - 1", leaf(0x8000_001E, 0).EBX & 0xFFFF, id},
			{"leaf 0x8000_001E ECX[10:0] node", leaf(0x8000_001E, 0).ECX & 0x7FF, 0},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("cores=%d cpu=%d: %s = %#x, want %#x", tt.cores, tt.cpu, c.what, c.got, c.want)
			}
		}
		if ids := topo.APICIDs(); len(ids) != tt.cores || ids[tt.cpu] != id {
			t.Errorf("Topology{%d}.APICIDs() = %v, want %d IDs with [%d] = %d", tt.cores, ids, tt.cores, tt.cpu, id)
		}
	}
}
