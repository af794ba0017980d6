package vcpu

import "github.com/govmm/govmm/kvm"

// CPUID leaves and bits the VMM edits (Intel SDM vol. 2A, "CPUID").
const (
	leafFeatures     = 0x1
	leafCacheParams  = 0x4
	leafExtFeatures  = 0x7
	leafTopology     = 0xB
	leafXSAVE        = 0xD
	leafExtTopology  = 0x1F
	leafExtFeatures1 = 0x8000_0001
	leafHypervisor   = 0x4000_0000
)

// kvmSignature is leaf 0x40000000 as KVM defines it: the highest
// hypervisor leaf in EAX and "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. Linux
// reads it to use kvmclock and KVM's other paravirtual features.
var kvmSignature = kvm.CPUIDEntry{Function: leafHypervisor, EAX: leafHypervisor + 1, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d}

// CPUIDBit names one feature bit: a leaf (and subleaf), a register, a bit.
type CPUIDBit struct {
	Name    string
	Leaf    uint32
	Subleaf uint32
	Reg     byte // 'a', 'b', 'c' or 'd'
	Bit     uint
}

// PVMHidden are the features whose instructions KVM's emulator fails on
// (measured on PVM hosts, see DESIGN.md) or that depend on one that is
// hidden. A guest that sees them clear does not use them, and on PVM its
// ring-0 code is emulated, so hiding them keeps the guest alive.
var PVMHidden = []CPUIDBit{
	{"cx16 (cmpxchg16b)", leafFeatures, 0, 'c', 13},
	{"movbe", leafFeatures, 0, 'c', 22},
	{"popcnt", leafFeatures, 0, 'c', 23},
	{"aes", leafFeatures, 0, 'c', 25},
	{"xsave", leafFeatures, 0, 'c', 26},
	{"osxsave", leafFeatures, 0, 'c', 27},
	{"avx (needs xsave)", leafFeatures, 0, 'c', 28},
	{"f16c (needs avx)", leafFeatures, 0, 'c', 29},
	{"rdrand", leafFeatures, 0, 'c', 30},
	{"fma (needs avx)", leafFeatures, 0, 'c', 12},
	{"pcid", leafFeatures, 0, 'c', 17},
	{"fsgsbase", leafExtFeatures, 0, 'b', 0},
	{"avx2 (needs avx)", leafExtFeatures, 0, 'b', 5},
	{"bmi1", leafExtFeatures, 0, 'b', 3},
	{"bmi2", leafExtFeatures, 0, 'b', 8},
	{"invpcid", leafExtFeatures, 0, 'b', 10},
	{"rtm", leafExtFeatures, 0, 'b', 11},
	{"avx512f (needs xsave)", leafExtFeatures, 0, 'b', 16},
	{"rdseed", leafExtFeatures, 0, 'b', 18},
	{"adx", leafExtFeatures, 0, 'b', 19},
	{"smap", leafExtFeatures, 0, 'b', 20},
	{"clflushopt", leafExtFeatures, 0, 'b', 23},
	{"clwb", leafExtFeatures, 0, 'b', 24},
	{"sha", leafExtFeatures, 0, 'b', 29},
	{"umip", leafExtFeatures, 0, 'c', 2},
	{"pku", leafExtFeatures, 0, 'c', 3},
	{"ospke", leafExtFeatures, 0, 'c', 4},
	{"waitpkg", leafExtFeatures, 0, 'c', 5},
	{"la57", leafExtFeatures, 0, 'c', 16},
	{"rdpid", leafExtFeatures, 0, 'c', 22},
	{"movdiri", leafExtFeatures, 0, 'c', 27},
	{"movdir64b", leafExtFeatures, 0, 'c', 28},
	{"lzcnt (abm)", leafExtFeatures1, 0, 'c', 5},
	{"rdtscp", leafExtFeatures1, 0, 'd', 27},
}

// Topology of the guest: one socket, one thread per core, Cores cores.
type Topology struct {
	Cores int
}

// CPUIDOptions say how to shape the guest's CPUID for one vCPU.
type CPUIDOptions struct {
	ID       int      // the vCPU's APIC ID
	Topology Topology // how many vCPUs, as cores of one socket
	Hide     []CPUIDBit
}

// BuildCPUID returns the CPUID table for one vCPU: what KVM supports, with
// the hypervisor bit set, per-vCPU APIC IDs and topology, and the features
// in opts.Hide cleared. supported is not modified.
func BuildCPUID(supported []kvm.CPUIDEntry, opts CPUIDOptions) []kvm.CPUIDEntry {
	out := append([]kvm.CPUIDEntry(nil), supported...)
	cores := uint32(max(opts.Topology.Cores, 1))
	id := uint32(opts.ID)
	dropXSAVE := false
	for _, h := range opts.Hide {
		if h.Leaf == leafFeatures && h.Reg == 'c' && h.Bit == 26 {
			dropXSAVE = true
		}
	}
	kept := out[:0]
	for _, e := range out {
		if dropXSAVE && e.Function == leafXSAVE {
			continue // no xsave: the state-component leaf must not advertise any
		}
		switch e.Function {
		case leafFeatures:
			// EBX[31:24] initial APIC ID, [23:16] logical processors.
			e.EBX = e.EBX&0x0000_FFFF | id<<24 | cores<<16
			e.ECX |= 1 << 31 // running under a hypervisor
			if cores > 1 {
				e.EDX |= 1 << 28 // HTT: EBX[23:16] is valid
			}
		case leafCacheParams:
			// EAX[31:26]: cores per package minus one.
			e.EAX = e.EAX&0x03FF_FFFF | (cores-1)<<26
		case leafTopology, leafExtTopology:
			e.EDX = id // x2APIC ID
			switch e.Index {
			case 0: // SMT level: one thread per core
				e.EAX, e.EBX = 0, 1
				e.ECX = e.ECX&^0xFF00 | 1<<8 | e.Index
			case 1: // core level
				e.EAX = uint32(bitsFor(cores))
				e.EBX = cores
				e.ECX = e.ECX&^0xFF00 | 2<<8 | e.Index
			default:
				e.EAX, e.EBX, e.ECX = 0, 0, e.Index
			}
		}
		kept = append(kept, e)
	}
	out = kept
	if !hasLeaf(out, leafHypervisor) {
		out = append(out, kvmSignature)
	}
	for _, h := range opts.Hide {
		for i := range out {
			e := &out[i]
			if e.Function != h.Leaf || (e.Index != h.Subleaf && e.Flags&kvm.CPUIDFlagSignificantIndex != 0) {
				continue
			}
			mask := ^(uint32(1) << h.Bit)
			switch h.Reg {
			case 'a':
				e.EAX &= mask
			case 'b':
				e.EBX &= mask
			case 'c':
				e.ECX &= mask
			case 'd':
				e.EDX &= mask
			}
		}
	}
	return out
}

// bitsFor is the number of bits an APIC ID needs to count n things.
func bitsFor(n uint32) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

func hasLeaf(entries []kvm.CPUIDEntry, fn uint32) bool {
	for _, e := range entries {
		if e.Function == fn {
			return true
		}
	}
	return false
}
