package vcpu

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestBuildCPUID(t *testing.T) {
	supported := []kvm.CPUIDEntry{
		{Function: 0x1, EBX: 0xff00_0800, ECX: 1<<23 | 1<<26 | 1<<0, EDX: 1},
		{Function: 0x7, Flags: kvm.CPUIDFlagSignificantIndex, Index: 0, EBX: 1<<0 | 1<<1},
		{Function: 0x7, Flags: kvm.CPUIDFlagSignificantIndex, Index: 1, EBX: 1 << 0},
		{Function: 0xB, Flags: kvm.CPUIDFlagSignificantIndex, Index: 0},
		{Function: 0xB, Flags: kvm.CPUIDFlagSignificantIndex, Index: 1},
		{Function: 0xD, Index: 0, EAX: 7},
	}
	before := append([]kvm.CPUIDEntry(nil), supported...)
	got := BuildCPUID(supported, CPUIDOptions{ID: 2, Topology: Topology{Cores: 4}, Hide: PVMHidden})
	find := func(fn, idx uint32) *kvm.CPUIDEntry {
		for i := range got {
			if got[i].Function == fn && got[i].Index == idx {
				return &got[i]
			}
		}
		return nil
	}
	l1 := find(1, 0)
	if l1.ECX&(1<<23) != 0 || l1.ECX&(1<<26) != 0 {
		t.Errorf("leaf 1 ECX = %#x, want popcnt (23) and xsave (26) hidden", l1.ECX)
	}
	if l1.ECX&(1<<31) == 0 || l1.ECX&1 == 0 {
		t.Errorf("leaf 1 ECX = %#x, want hypervisor bit set and sse3 kept", l1.ECX)
	}
	if id, n := l1.EBX>>24, l1.EBX>>16&0xff; id != 2 || n != 4 {
		t.Errorf("leaf 1 APIC ID %d, logical count %d, want 2 and 4", id, n)
	}
	if l7 := find(7, 0); l7.EBX != 1<<1 {
		t.Errorf("leaf 7.0 EBX = %#x, want fsgsbase hidden and bit 1 kept", l7.EBX)
	}
	if l71 := find(7, 1); l71.EBX != 1 {
		t.Errorf("leaf 7.1 EBX = %#x, want untouched (hiding applies to subleaf 0)", l71.EBX)
	}
	if find(0xD, 0) != nil {
		t.Error("leaf 0xD kept though xsave is hidden")
	}
	if b := find(0xB, 1); b.EDX != 2 || b.EBX != 4 || b.EAX != 2 {
		t.Errorf("leaf 0xB.1 = eax %d ebx %d edx %d, want 2 bits, 4 cores, x2APIC ID 2", b.EAX, b.EBX, b.EDX)
	}
	for i := range before {
		if before[i] != supported[i] {
			t.Fatalf("BuildCPUID modified its input at %d", i)
		}
	}
	if h := find(0x4000_0000, 0); h == nil || h.EBX != 0x4b4d564b || h.ECX != 0x564b4d56 || h.EDX != 0x4d {
		t.Errorf("leaf 0x40000000 = %+v, want KVM's signature added", h)
	}
	// Without hiding, nothing is cleared.
	plain := BuildCPUID(supported, CPUIDOptions{Topology: Topology{Cores: 1}})
	if plain[0].ECX&(1<<23) == 0 || len(plain) != len(supported)+1 {
		t.Errorf("BuildCPUID without Hide cleared popcnt or dropped leaves")
	}
}
