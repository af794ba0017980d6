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
	leafBrand        = 0x8000_0002 // and the next two: the brand string
	leafAMDSizes     = 0x8000_0008 // AMD: ECX has the core count and APIC ID core bits
	leafAMDTopology  = 0x8000_001E // AMD: extended APIC ID, core and node IDs
)

// kvmSignature is leaf 0x40000000 as KVM defines it: the highest
// hypervisor leaf in EAX and "KVMKVMKVM\0\0\0" in EBX, ECX, EDX. Linux
// reads it to use kvmclock and KVM's other paravirtual features.
var kvmSignature = kvm.CPUIDEntry{Function: leafHypervisor, EAX: leafHypervisor + 1, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d}

// CPUIDBit names one feature bit: a leaf (and subleaf), a register, a bit.
type CPUIDBit struct {
	// Name is the feature's name in Linux's /proc/cpuinfo (what its
	// clearcpuid= parameter takes).
	Name    string
	Leaf    uint32
	Subleaf uint32
	Reg     byte // 'a', 'b', 'c' or 'd'
	Bit     uint
	// Needs names a feature this one depends on (Linux's
	// arch/x86/kernel/cpu/cpuid-deps.c, or the SDM for the OS-enable bits):
	// where that one is off, a guest does not use this one either.
	Needs string
}

// PVMHidden are the features whose instructions KVM's emulator fails on
// (measured on PVM hosts, see DESIGN.md) or that depend on one that is
// hidden. A guest that sees them clear does not use them, and on PVM its
// ring-0 code is emulated, so hiding them keeps the guest alive. On PVM
// hosts KVM does not keep all of these hidden (see StillVisible), so the
// machine package also turns them off on a Linux guest's command line.
//
// The SIMD extensions past SSE2 (ssse3, sse4_1, sse4_2, pclmulqdq, aes,
// sha_ni, and avx with xsave) are here because Linux runs them in ring 0
// between kernel_fpu_begin and kernel_fpu_end (blake2s for the random pool
// with SSSE3, crc32c with SSE4.2, ...), and KVM's emulator fails on them:
// Debian's cloud kernel stopped on blake2s_compress_ssse3's movd xmm15,
// ecx. SSE and SSE2 are part of x86-64 and cannot go.
var PVMHidden = []CPUIDBit{
	{"pclmulqdq", leafFeatures, 0, 'c', 1, ""},
	{"ssse3", leafFeatures, 0, 'c', 9, ""},
	{"cx16", leafFeatures, 0, 'c', 13, ""}, // cmpxchg16b
	{"sse4_1", leafFeatures, 0, 'c', 19, ""},
	{"sse4_2", leafFeatures, 0, 'c', 20, ""},
	{"movbe", leafFeatures, 0, 'c', 22, ""},
	{"popcnt", leafFeatures, 0, 'c', 23, ""},
	{"aes", leafFeatures, 0, 'c', 25, ""},
	{"xsave", leafFeatures, 0, 'c', 26, ""},
	{"osxsave", leafFeatures, 0, 'c', 27, "xsave"},
	{"avx", leafFeatures, 0, 'c', 28, "xsave"},
	{"f16c", leafFeatures, 0, 'c', 29, "xsave"},
	{"rdrand", leafFeatures, 0, 'c', 30, ""},
	{"fma", leafFeatures, 0, 'c', 12, "xsave"},
	{"pcid", leafFeatures, 0, 'c', 17, ""},
	{"fsgsbase", leafExtFeatures, 0, 'b', 0, ""},
	{"avx2", leafExtFeatures, 0, 'b', 5, "xsave"},
	{"bmi1", leafExtFeatures, 0, 'b', 3, ""},
	{"smep", leafExtFeatures, 0, 'b', 7, ""},
	{"bmi2", leafExtFeatures, 0, 'b', 8, ""},
	{"invpcid", leafExtFeatures, 0, 'b', 10, ""},
	{"rtm", leafExtFeatures, 0, 'b', 11, ""},
	{"avx512f", leafExtFeatures, 0, 'b', 16, "xsave"},
	{"rdseed", leafExtFeatures, 0, 'b', 18, ""},
	{"adx", leafExtFeatures, 0, 'b', 19, ""},
	{"smap", leafExtFeatures, 0, 'b', 20, ""},
	{"clflushopt", leafExtFeatures, 0, 'b', 23, ""},
	{"clwb", leafExtFeatures, 0, 'b', 24, ""},
	{"sha_ni", leafExtFeatures, 0, 'b', 29, ""},
	{"umip", leafExtFeatures, 0, 'c', 2, ""},
	{"pku", leafExtFeatures, 0, 'c', 3, ""},
	{"ospke", leafExtFeatures, 0, 'c', 4, "pku"},
	{"waitpkg", leafExtFeatures, 0, 'c', 5, ""},
	{"la57", leafExtFeatures, 0, 'c', 16, ""},
	{"rdpid", leafExtFeatures, 0, 'c', 22, ""},
	{"movdiri", leafExtFeatures, 0, 'c', 27, ""},
	{"movdir64b", leafExtFeatures, 0, 'c', 28, ""},
	{"abm", leafExtFeatures1, 0, 'c', 5, ""}, // lzcnt
	{"rdtscp", leafExtFeatures1, 0, 'd', 27, ""},
}

// Topology of the guest: one socket, one thread per core, Cores cores.
// It is the one source of the vCPUs' APIC IDs (APICID), which both the
// CPUID built here and the ACPI MADT use.
type Topology struct {
	Cores int
}

// CPUIDOptions say how to shape the guest's CPUID for one vCPU.
type CPUIDOptions struct {
	ID       int      // the vCPU's APIC ID
	Topology Topology // how many vCPUs, as cores of one socket
	Hide     []CPUIDBit
	// Brand is the processor brand string for leaves 0x8000_0002-4, what
	// Linux shows as "model name": KVM leaves them zero for the VMM to
	// fill. At most 47 bytes are used; "" leaves them as they are.
	Brand string
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
			// EAX[31:26]: cores per package minus one; EAX[25:14]:
			// logical processors sharing this cache minus one: one
			// thread per core keeps L1 and L2 private, the package's
			// cores share L3 (EAX[7:5] is the cache level).
			sharing := uint32(0)
			if (e.EAX>>5)&7 >= 3 {
				sharing = cores - 1
			}
			e.EAX = e.EAX&0x0000_3FFF | (cores-1)<<26 | sharing<<14
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
		case leafAMDSizes:
			// ECX[7:0] NC: cores minus one; ECX[15:12]: APIC ID bits
			// that number the cores (AMD APM vol. 3, E.4.7).
			e.ECX = e.ECX&^0xF0FF | uint32(bitsFor(cores))<<12 | (cores-1)&0xFF
		case leafAMDTopology:
			// EAX: the extended APIC ID; EBX[7:0] core ID, [15:8]
			// threads per core minus one; ECX[7:0] node ID, [10:8]
			// nodes per package minus one (AMD APM vol. 3, E.4.15).
			e.EAX = id
			e.EBX = e.EBX&^0xFFFF | id&0xFF
			e.ECX = e.ECX &^ 0x7FF
		}
		kept = append(kept, e)
	}
	out = kept
	if opts.Brand != "" {
		setBrand(out, opts.Brand)
	}
	if !hasLeaf(out, leafHypervisor) {
		out = append(out, kvmSignature)
	}
	for _, h := range opts.Hide {
		for i := range out {
			if r := h.reg(&out[i]); r != nil {
				*r &^= 1 << h.Bit
			}
		}
	}
	return out
}

// setBrand writes brand, NUL-padded and cut to 47 bytes, into the table's
// brand-string leaves, 16 bytes each in EAX, EBX, ECX, EDX order.
func setBrand(table []kvm.CPUIDEntry, brand string) {
	var b [48]byte
	copy(b[:47], brand)
	word := func(i int) uint32 {
		return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
	}
	for i := range table {
		e := &table[i]
		if e.Function < leafBrand || e.Function > leafBrand+2 {
			continue
		}
		o := int(e.Function-leafBrand) * 16
		e.EAX, e.EBX, e.ECX, e.EDX = word(o), word(o+4), word(o+8), word(o+12)
	}
}

// reg returns the register of e that holds the bit, or nil when e is
// another leaf or subleaf. An entry without CPUIDFlagSignificantIndex
// answers every subleaf.
func (b CPUIDBit) reg(e *kvm.CPUIDEntry) *uint32 {
	if e.Function != b.Leaf || (e.Index != b.Subleaf && e.Flags&kvm.CPUIDFlagSignificantIndex != 0) {
		return nil
	}
	switch b.Reg {
	case 'a':
		return &e.EAX
	case 'b':
		return &e.EBX
	case 'c':
		return &e.ECX
	case 'd':
		return &e.EDX
	}
	return nil
}

// SetIn reports whether the bit is set in a CPUID table. A leaf the table
// lacks reads as zeros.
func (b CPUIDBit) SetIn(table []kvm.CPUIDEntry) bool {
	for i := range table {
		if r := b.reg(&table[i]); r != nil {
			return *r&(1<<b.Bit) != 0
		}
	}
	return false
}

// StillVisible returns the bits of hidden that are set in table, the
// CPUID table KVM reports back (KVM_GET_CPUID2) after BuildCPUID's table
// was set: features the VMM hid that the guest will see anyway. On PVM
// hosts kvm_pvm rewrites leaves 1, 7 and 0xD with host bits (DESIGN.md).
func StillVisible(table []kvm.CPUIDEntry, hidden []CPUIDBit) []CPUIDBit {
	var out []CPUIDBit
	for _, h := range hidden {
		if h.SetIn(table) {
			out = append(out, h)
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
