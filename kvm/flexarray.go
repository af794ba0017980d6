package kvm

// struct kvm_cpuid2 and struct kvm_msrs are an 8-byte header followed by a
// variable number of entries. Go cannot declare such a struct, so the
// arguments are built in a slice of words, aligned for the kernel's u32 and
// u64 fields, with the header first and the entries after it, field by
// field in the C order.

const (
	cpuidEntryWords = 10 // sizeof(struct kvm_cpuid_entry2) / 4
	cpuid2HeadWords = 2  // sizeof(struct kvm_cpuid2) / 4
	msrEntryWords   = 2  // sizeof(struct kvm_msr_entry) / 8
	msrsHeadWords   = 1  // sizeof(struct kvm_msrs) / 8
)

// newCPUID2 returns a struct kvm_cpuid2 holding entries, with room for
// capacity entries in all (capacity >= len(entries)); nent is set to
// capacity, as KVM_GET_SUPPORTED_CPUID wants the room it may fill.
func newCPUID2(entries []CPUIDEntry, capacity int) []uint32 {
	buf := make([]uint32, cpuid2HeadWords+cpuidEntryWords*capacity)
	buf[0] = uint32(capacity)
	for i, e := range entries {
		w := buf[cpuid2HeadWords+cpuidEntryWords*i:]
		w[0], w[1], w[2] = e.Function, e.Index, e.Flags
		w[3], w[4], w[5], w[6] = e.EAX, e.EBX, e.ECX, e.EDX
	}
	return buf
}

// cpuid2Entries returns the entries of a struct kvm_cpuid2 that the kernel
// filled; nent is trusted only up to the room in buf.
func cpuid2Entries(buf []uint32) []CPUIDEntry {
	n := min(int(buf[0]), (len(buf)-cpuid2HeadWords)/cpuidEntryWords)
	out := make([]CPUIDEntry, n)
	for i := range out {
		w := buf[cpuid2HeadWords+cpuidEntryWords*i:]
		out[i] = CPUIDEntry{
			Function: w[0], Index: w[1], Flags: w[2],
			EAX: w[3], EBX: w[4], ECX: w[5], EDX: w[6],
		}
	}
	return out
}

// newMSRs returns a struct kvm_msrs holding entries.
func newMSRs(entries []MSREntry) []uint64 {
	buf := make([]uint64, msrsHeadWords+msrEntryWords*len(entries))
	buf[0] = uint64(len(entries)) // nmsrs in the low half, pad zero (little-endian)
	for i, e := range entries {
		w := buf[msrsHeadWords+msrEntryWords*i:]
		w[0] = uint64(e.Index)
		w[1] = e.Data
	}
	return buf
}

// msrsData copies the data of the first n entries of a struct kvm_msrs back
// into entries.
func msrsData(buf []uint64, entries []MSREntry, n int) {
	n = min(n, len(entries), (len(buf)-msrsHeadWords)/msrEntryWords)
	for i := range n {
		entries[i].Data = buf[msrsHeadWords+msrEntryWords*i+1]
	}
}
