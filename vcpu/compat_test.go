package vcpu

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestMissingFeatures(t *testing.T) {
	const sig = kvm.CPUIDFlagSignificantIndex
	host := []kvm.CPUIDEntry{
		{Function: 1, ECX: 1<<0 | 1<<28, EDX: 1 << 26}, // sse3, avx, sse2
		{Function: 7, Index: 0, Flags: sig, EBX: 1 << 5},
		{Function: 7, Index: 1, Flags: sig},
	}
	pvmShown := []kvm.CPUIDEntry{{Function: 7, Index: 0, Flags: sig, EBX: 1 << 16}} // avx512f, as KVM shows it
	tests := []struct {
		name  string
		table []kvm.CPUIDEntry
		want  []string
	}{
		{"the same CPU", host, nil},
		{"dynamic bits never missing", []kvm.CPUIDEntry{{Function: 1, ECX: 1<<27 | 1<<31 | 1<<24, EDX: 1 << 9}}, nil},
		{"a bit KVM shows a vCPU here", []kvm.CPUIDEntry{{Function: 7, Flags: sig, EBX: 1<<16 | 1<<5}}, nil},
		{"named and unnamed bits", []kvm.CPUIDEntry{
			{Function: 1, ECX: 1 << 9},                                      // ssse3
			{Function: 7, Index: 0, Flags: sig, EBX: 1 << 29, EDX: 1 << 13}, // sha_ni, an unnamed bit
			{Function: 7, Index: 1, Flags: sig, EAX: 1 << 4},                // avx_vnni
			{Function: 0x80000001, EDX: 1 << 27},                            // rdtscp
		}, []string{"avx_vnni", "leaf 0x7.0 edx bit 13", "rdtscp", "sha_ni", "ssse3"}},
		{"another subleaf does not count", []kvm.CPUIDEntry{{Function: 7, Index: 2, Flags: sig, EBX: ^uint32(0)}}, nil},
	}
	for _, tt := range tests {
		if got := MissingFeatures(tt.table, host, pvmShown); !slices.Equal(got, tt.want) {
			t.Errorf("%s: MissingFeatures() = %q, want %q", tt.name, got, tt.want)
		}
	}
}
