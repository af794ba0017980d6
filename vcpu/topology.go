package vcpu

// APICID is the local APIC ID of vCPU cpu (0 is the boot vCPU): with one
// socket of single-threaded cores, its core number, which fits the core
// field of CPUID leaf 0xB (bitsFor(Cores) bits) with the socket's bits,
// all zero, above it. KVM takes it as the vCPU's id (KVM_CREATE_VCPU),
// CPUID reports it, and the MADT lists it.
func (t Topology) APICID(cpu int) uint32 { return uint32(cpu) }

// APICIDs are the APIC IDs of all the vCPUs, boot vCPU first.
func (t Topology) APICIDs() []uint32 {
	ids := make([]uint32, max(t.Cores, 1))
	for i := range ids {
		ids[i] = t.APICID(i)
	}
	return ids
}
