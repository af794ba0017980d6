package vcpu

import (
	"fmt"
	"sort"
	"sync"

	"github.com/govmm/govmm/kvm"
)

// featureRegs are the CPUID registers whose bits are features a guest may
// use once it has seen them: a snapshot taken where a bit was set cannot
// run where it cannot be (Intel SDM vol. 2A, CPUID, tables 3-10 to 3-20;
// AMD APM vol. 3, E.3).
var featureRegs = []struct {
	leaf, subleaf uint32
	reg           byte
}{
	{leafFeatures, 0, 'c'}, {leafFeatures, 0, 'd'},
	{leafExtFeatures, 0, 'b'}, {leafExtFeatures, 0, 'c'}, {leafExtFeatures, 0, 'd'},
	{leafExtFeatures, 1, 'a'},
	{leafXSAVE, 1, 'a'},
	{leafExtFeatures1, 0, 'c'}, {leafExtFeatures1, 0, 'd'},
}

// dynamicBits are feature-register bits that say what the guest or KVM
// turned on rather than what the CPU has: KVM computes them for each
// vCPU, so they are never missing.
var dynamicBits = map[CPUIDBit]string{
	{Leaf: leafFeatures, Reg: 'c', Bit: 27}:    "osxsave: CR4.OSXSAVE as the guest set it",
	{Leaf: leafFeatures, Reg: 'c', Bit: 31}:    "hypervisor: KVM's",
	{Leaf: leafFeatures, Reg: 'c', Bit: 24}:    "tsc_deadline_timer: KVM's LAPIC emulates it",
	{Leaf: leafFeatures, Reg: 'c', Bit: 21}:    "x2apic: KVM's LAPIC emulates it",
	{Leaf: leafFeatures, Reg: 'd', Bit: 9}:     "apic: KVM's LAPIC",
	{Leaf: leafExtFeatures, Reg: 'c', Bit: 4}:  "ospke: CR4.PKE as the guest set it",
	{Leaf: leafExtFeatures1, Reg: 'd', Bit: 9}: "apic (AMD's copy)",
}

// featureNames are Linux's /proc/cpuinfo names of the feature bits a
// snapshot most often carries; others are named by leaf, register and bit.
// Built at first use (a snapshot's restore), not at every start.
var featureNames = sync.OnceValue(func() map[CPUIDBit]string {
	names := map[CPUIDBit]string{}
	for _, b := range PVMHidden {
		names[CPUIDBit{Leaf: b.Leaf, Subleaf: b.Subleaf, Reg: b.Reg, Bit: b.Bit}] = b.Name
	}
	more := []CPUIDBit{
		{"sse3", leafFeatures, 0, 'c', 0, ""},
		{"vmx", leafFeatures, 0, 'c', 5, ""},
		{"sse", leafFeatures, 0, 'd', 25, ""},
		{"sse2", leafFeatures, 0, 'd', 26, ""},
		{"avx512dq", leafExtFeatures, 0, 'b', 17, ""},
		{"avx512ifma", leafExtFeatures, 0, 'b', 21, ""},
		{"clwb", leafExtFeatures, 0, 'b', 24, ""},
		{"avx512cd", leafExtFeatures, 0, 'b', 28, ""},
		{"sha_ni", leafExtFeatures, 0, 'b', 29, ""},
		{"avx512bw", leafExtFeatures, 0, 'b', 30, ""},
		{"avx512vl", leafExtFeatures, 0, 'b', 31, ""},
		{"avx512vbmi", leafExtFeatures, 0, 'c', 1, ""},
		{"umip", leafExtFeatures, 0, 'c', 2, ""},
		{"pku", leafExtFeatures, 0, 'c', 3, ""},
		{"avx512_vbmi2", leafExtFeatures, 0, 'c', 6, ""},
		{"gfni", leafExtFeatures, 0, 'c', 8, ""},
		{"vaes", leafExtFeatures, 0, 'c', 9, ""},
		{"vpclmulqdq", leafExtFeatures, 0, 'c', 10, ""},
		{"avx512_vnni", leafExtFeatures, 0, 'c', 11, ""},
		{"la57", leafExtFeatures, 0, 'c', 16, ""},
		{"rdpid", leafExtFeatures, 0, 'c', 22, ""},
		{"fsrm", leafExtFeatures, 0, 'd', 4, ""},
		{"serialize", leafExtFeatures, 0, 'd', 14, ""},
		{"amx_tile", leafExtFeatures, 0, 'd', 24, ""},
		{"avx_vnni", leafExtFeatures, 1, 'a', 4, ""},
		{"avx512_bf16", leafExtFeatures, 1, 'a', 5, ""},
		{"xsaveopt", leafXSAVE, 1, 'a', 0, ""},
		{"xsavec", leafXSAVE, 1, 'a', 1, ""},
		{"xgetbv1", leafXSAVE, 1, 'a', 2, ""},
		{"xsaves", leafXSAVE, 1, 'a', 3, ""},
		{"lahf_lm", leafExtFeatures1, 0, 'c', 0, ""},
		{"abm", leafExtFeatures1, 0, 'c', 5, ""},
		{"syscall", leafExtFeatures1, 0, 'd', 11, ""},
		{"nx", leafExtFeatures1, 0, 'd', 20, ""},
		{"pdpe1gb", leafExtFeatures1, 0, 'd', 26, ""},
		{"rdtscp", leafExtFeatures1, 0, 'd', 27, ""},
		{"lm", leafExtFeatures1, 0, 'd', 29, ""},
	}
	for _, b := range more {
		names[CPUIDBit{Leaf: b.Leaf, Subleaf: b.Subleaf, Reg: b.Reg, Bit: b.Bit}] = b.Name
	}
	return names
})

// MissingFeatures lists the CPU features the guest saw in table (a saved
// vCPU's CPUID) that this host cannot give it: set in table's feature
// registers but in none of offered, the tables of what this host has.
// Pass KVM_GET_SUPPORTED_CPUID and the table KVM gives back for a vCPU
// here (on PVM hosts KVM shows the host's own bits beyond what it says it
// supports). The names are /proc/cpuinfo's where known, else "leaf
// 0x7.0 ecx bit 13"; sorted.
func MissingFeatures(table []kvm.CPUIDEntry, offered ...[]kvm.CPUIDEntry) []string {
	var missing []string
	for _, fr := range featureRegs {
		want := regOf(table, fr.leaf, fr.subleaf, fr.reg)
		var have uint32
		for _, o := range offered {
			have |= regOf(o, fr.leaf, fr.subleaf, fr.reg)
		}
		for bit := uint(0); bit < 32; bit++ {
			if want&(1<<bit) == 0 || have&(1<<bit) != 0 {
				continue
			}
			key := CPUIDBit{Leaf: fr.leaf, Subleaf: fr.subleaf, Reg: fr.reg, Bit: bit}
			if _, ok := dynamicBits[key]; ok {
				continue
			}
			name, ok := featureNames()[key]
			if !ok {
				name = fmt.Sprintf("leaf %#x.%d e%cx bit %d", fr.leaf, fr.subleaf, fr.reg, bit)
			}
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	return missing
}

// regOf is register reg of the leaf's entry in table, 0 if it has none.
func regOf(table []kvm.CPUIDEntry, leaf, subleaf uint32, reg byte) uint32 {
	b := CPUIDBit{Leaf: leaf, Subleaf: subleaf, Reg: reg}
	for i := range table {
		if p := b.reg(&table[i]); p != nil {
			return *p
		}
	}
	return 0
}
