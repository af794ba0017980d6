package testguest

import (
	"fmt"
	"regexp"
	"strconv"
)

// CPUIDLeaf names a CPUID leaf and subleaf.
type CPUIDLeaf struct{ Leaf, Subleaf uint32 }

// CPUIDRegs are the four registers CPUID returns.
type CPUIDRegs struct{ EAX, EBX, ECX, EDX uint32 }

// CPUIDProbes are the leaves mode=cpuid reports, in its order (CPUID_PROBES
// in src/guest.h).
var CPUIDProbes = []CPUIDLeaf{{0x1, 0}, {0x7, 0}, {0x7, 1}, {0xd, 0}, {0xd, 1}, {0x8000_0001, 0}, {0x4000_0000, 0}}

var cpuidLine = regexp.MustCompile(`(?m)^cpuid (ring[03]) ([0-9a-f]{8})\.([0-9a-f]{2}) eax=([0-9a-f]{8}) ebx=([0-9a-f]{8}) ecx=([0-9a-f]{8}) edx=([0-9a-f]{8})$`)

// ParseCPUID reads mode=cpuid's output: what CPUID returned in ring 0 and
// in ring 3 for each of CPUIDProbes. It fails unless every probe is there
// for both rings.
func ParseCPUID(serial string) (ring0, ring3 map[CPUIDLeaf]CPUIDRegs, err error) {
	ring0, ring3 = map[CPUIDLeaf]CPUIDRegs{}, map[CPUIDLeaf]CPUIDRegs{}
	hex := func(s string) uint32 {
		v, _ := strconv.ParseUint(s, 16, 32) // the pattern allows hex digits only
		return uint32(v)
	}
	for _, m := range cpuidLine.FindAllStringSubmatch(serial, -1) {
		leaf := CPUIDLeaf{hex(m[2]), hex(m[3])}
		regs := CPUIDRegs{hex(m[4]), hex(m[5]), hex(m[6]), hex(m[7])}
		if m[1] == "ring0" {
			ring0[leaf] = regs
		} else {
			ring3[leaf] = regs
		}
	}
	for _, p := range CPUIDProbes {
		_, ok0 := ring0[p]
		_, ok3 := ring3[p]
		if !ok0 || !ok3 {
			return nil, nil, fmt.Errorf("testguest: no cpuid lines for leaf %#x.%d in both rings (ring 0: %v, ring 3: %v) in the output", p.Leaf, p.Subleaf, ok0, ok3)
		}
	}
	return ring0, ring3, nil
}
