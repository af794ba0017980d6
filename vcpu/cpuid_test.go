package vcpu

import (
	"strings"
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

func TestStillVisible(t *testing.T) {
	// Leaves 1, 7 and 0x80000001 as KVM_GET_CPUID2 gave them back on a PVM
	// host after a table was set: leaves 1 and 7 carry host bits again
	// (OSXSAVE follows CR4, clear at reset), 0x80000001 kept its hiding.
	pvm := []kvm.CPUIDEntry{
		{Function: 0x1, EAX: 0xa0671, EBX: 0x20800, ECX: 0xf7f83203, EDX: 0x1f8bfbff},
		{Function: 0x7, Flags: kvm.CPUIDFlagSignificantIndex, EAX: 0x2, EBX: 0xf1bf2bfb, ECX: 0x1a005f46, EDX: 0x20814010},
		{Function: 0x7, Flags: kvm.CPUIDFlagSignificantIndex, Index: 1, EAX: 0x1c30, EDX: 0x4000},
		{Function: 0x8000_0001, ECX: 0x101, EDX: 0x20100800},
	}
	names := func(bits []CPUIDBit) string {
		var s []string
		for _, b := range bits {
			s = append(s, b.Name)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name   string
		table  []kvm.CPUIDEntry
		hidden []CPUIDBit
		want   string
	}{
		{"PVM host", pvm, PVMHidden, "pclmulqdq,ssse3,cx16,sse4_1,sse4_2,movbe,popcnt,aes,xsave,avx,f16c,rdrand,fma,fsgsbase,avx2,bmi1,smep,bmi2,rtm,avx512f,rdseed,adx,smap,clflushopt,clwb,sha_ni,umip,movdiri,movdir64b"},
		{"hiding kept", BuildCPUID(pvm, CPUIDOptions{Hide: PVMHidden}), PVMHidden, ""},
		{"nothing hidden", pvm, nil, ""},
		{"leaf missing reads as zero", pvm, []CPUIDBit{{"x", 0xD, 1, 'a', 0, ""}}, ""},
		{"subleaf 1 is not subleaf 0", pvm, []CPUIDBit{{"x", 7, 1, 'a', 3, ""}, {"y", 7, 1, 'a', 5, ""}}, "y"},
		{"leaf without a significant index answers every subleaf", []kvm.CPUIDEntry{{Function: 0xD, EAX: 1}}, []CPUIDBit{{"x", 0xD, 3, 'a', 0, ""}}, "x"},
	}
	for _, tt := range tests {
		if got := names(StillVisible(tt.table, tt.hidden)); got != tt.want {
			t.Errorf("StillVisible(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestPVMHiddenNeeds checks that every feature a hidden one depends on is
// hidden too, so the dependency is a fact of the list, not a hope.
func TestPVMHiddenNeeds(t *testing.T) {
	byName := map[string]bool{}
	for _, b := range PVMHidden {
		if byName[b.Name] {
			t.Errorf("PVMHidden lists %q twice", b.Name)
		}
		byName[b.Name] = true
	}
	for _, b := range PVMHidden {
		if b.Needs != "" && !byName[b.Needs] {
			t.Errorf("PVMHidden: %q needs %q, which is not hidden", b.Name, b.Needs)
		}
	}
}

func TestBuildCPUIDBrand(t *testing.T) {
	supported := []kvm.CPUIDEntry{{Function: 0x8000_0000, EAX: 0x8000_0004}, {Function: 0x8000_0002}, {Function: 0x8000_0003}, {Function: 0x8000_0004}}
	brand := func(table []kvm.CPUIDEntry) string {
		var b []byte
		for _, e := range table {
			if e.Function >= 0x8000_0002 && e.Function <= 0x8000_0004 {
				for _, r := range []uint32{e.EAX, e.EBX, e.ECX, e.EDX} {
					b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
				}
			}
		}
		return string(b)
	}
	long := strings.Repeat("x", 60)
	tests := []struct{ in, want string }{
		{"QEMU TCG CPU version 2.5+", "QEMU TCG CPU version 2.5+" + strings.Repeat("\x00", 23)},
		{long, long[:47] + "\x00"},
		{"", strings.Repeat("\x00", 48)},
	}
	for _, tt := range tests {
		if got := brand(BuildCPUID(supported, CPUIDOptions{Brand: tt.in})); got != tt.want {
			t.Errorf("BuildCPUID(Brand %q) brand leaves = %q, want %q", tt.in, got, tt.want)
		}
	}
}
