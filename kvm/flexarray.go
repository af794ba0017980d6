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
// capacity, as KVM_GET_SUPPORTED_CPUID and KVM_GET_CPUID2 want the room
// they may fill. The room past entries is filled with unusedEntry words.
func newCPUID2(entries []CPUIDEntry, capacity int) []uint32 {
	buf := make([]uint32, cpuid2HeadWords+cpuidEntryWords*capacity)
	buf[0] = uint32(capacity)
	for i, e := range entries {
		w := buf[cpuid2HeadWords+cpuidEntryWords*i:]
		w[0], w[1], w[2] = e.Function, e.Index, e.Flags
		w[3], w[4], w[5], w[6] = e.EAX, e.EBX, e.ECX, e.EDX
	}
	for i := cpuid2HeadWords + cpuidEntryWords*len(entries); i < len(buf); i++ {
		buf[i] = unusedEntry
	}
	return buf
}

// unusedEntry fills the room of a struct kvm_cpuid2 the kernel has not
// written. Kernels before 6.3 (Debian 12's 6.1 among them) leave nent as
// it was when KVM_GET_CPUID2 succeeds, so the count of entries it wrote is
// where the unused room begins; a flags word of all ones is never a real
// entry's (KVM defines three flag bits).
const unusedEntry = 0xFFFF_FFFF

// cpuid2Entries returns the entries of a struct kvm_cpuid2 that the kernel
// filled: up to nent, the room in buf, and the first unused entry.
func cpuid2Entries(buf []uint32) []CPUIDEntry {
	n := min(int(buf[0]), (len(buf)-cpuid2HeadWords)/cpuidEntryWords)
	out := make([]CPUIDEntry, 0, n)
	for i := range n {
		w := buf[cpuid2HeadWords+cpuidEntryWords*i:]
		if w[2] == unusedEntry {
			break
		}
		out = append(out, CPUIDEntry{
			Function: w[0], Index: w[1], Flags: w[2],
			EAX: w[3], EBX: w[4], ECX: w[5], EDX: w[6],
		})
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
