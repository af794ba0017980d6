package kvm_test

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

// TestGetCPUID2 sets a vCPU's CPUID table and reads it back. KVM keeps a
// leaf the VMM defines (the hypervisor range is the VMM's); other leaves
// may come back changed or not at all (kvm_pvm rewrites leaves 1, 7 and
// 0xD with host bits and drops some it does not know), which the machine
// package reports, so here they are only logged.
func TestGetCPUID2(t *testing.T) {
	s := openKVM(t)
	vm := createVM(t, s)
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	supported, err := s.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	marker := kvm.CPUIDEntry{Function: 0x4000_0000, EAX: 0x4000_0001, EBX: 0x6d6d7667, ECX: 0x6d6d7667, EDX: 0x6d6d7667}
	var set []kvm.CPUIDEntry
	for _, e := range supported {
		if e.Function != marker.Function {
			set = append(set, e)
		}
	}
	set = append(set, marker)
	if err := v.SetCPUID2(set); err != nil {
		t.Fatal(err)
	}
	got, err := v.GetCPUID2()
	if err != nil {
		t.Fatalf("GetCPUID2() = %v", err)
	}
	if len(got) == 0 || len(got) > len(set) {
		t.Errorf("GetCPUID2() = %d entries, want 1 to the %d set", len(got), len(set))
	}
	found := false
	for _, e := range got {
		if e.Function == marker.Function {
			found = true
			if e != marker {
				t.Errorf("GetCPUID2() leaf %#x = %+v, want %+v as set", e.Function, e, marker)
			}
		}
	}
	if !found {
		t.Errorf("GetCPUID2() lacks leaf %#x, which was set", marker.Function)
	}
	for _, e := range got {
		for _, w := range set {
			if w.Function == e.Function && w.Index == e.Index && w != e {
				t.Logf("leaf %#x.%d came back as eax %#x ebx %#x ecx %#x edx %#x, set as eax %#x ebx %#x ecx %#x edx %#x",
					e.Function, e.Index, e.EAX, e.EBX, e.ECX, e.EDX, w.EAX, w.EBX, w.ECX, w.EDX)
			}
		}
	}
}
