package kvm

import (
	"reflect"
	"testing"
)

func TestCPUID2RoundTrip(t *testing.T) {
	entries := []CPUIDEntry{
		{Function: 0, EAX: 0xd, EBX: 0x756e6547, ECX: 0x6c65746e, EDX: 0x49656e69},
		{Function: 7, Index: 1, Flags: CPUIDFlagSignificantIndex, EAX: 1, EBX: 2, ECX: 3, EDX: 4},
	}
	buf := newCPUID2(entries, 4)
	if got, want := len(buf), cpuid2HeadWords+4*cpuidEntryWords; got != want {
		t.Fatalf("len(newCPUID2(2 entries, room 4)) = %d words, want %d", got, want)
	}
	if buf[0] != 4 {
		t.Errorf("newCPUID2(2 entries, room 4) nent = %d, want 4", buf[0])
	}
	buf[0] = 2 // as the kernel would after filling two entries
	if got := cpuid2Entries(buf); !reflect.DeepEqual(got, entries) {
		t.Errorf("cpuid2Entries(newCPUID2(e)) = %+v, want %+v", got, entries)
	}
}

// TestCPUID2EntriesOldKernel reads a table as a kernel before 6.3 leaves
// it after KVM_GET_CPUID2: two entries written, nent still the room.
func TestCPUID2EntriesOldKernel(t *testing.T) {
	entries := []CPUIDEntry{{Function: 0, EAX: 0xd}, {Function: 0x4000_0000, EAX: 0x4000_0001}}
	buf := newCPUID2(nil, 8)
	copy(buf, newCPUID2(entries, 2)[:cpuid2HeadWords+2*cpuidEntryWords]) // the kernel's copy_to_user
	buf[0] = 8                                                           // and nent left alone
	if got := cpuid2Entries(buf); !reflect.DeepEqual(got, entries) {
		t.Errorf("cpuid2Entries(2 written, nent 8) = %+v, want %+v", got, entries)
	}
}

func TestCPUID2EntriesClipsNent(t *testing.T) {
	buf := newCPUID2([]CPUIDEntry{{Function: 1}}, 1)
	buf[0] = 1000
	if got := cpuid2Entries(buf); len(got) != 1 {
		t.Errorf("len(cpuid2Entries(nent 1000, room 1)) = %d, want 1", len(got))
	}
}

func TestMSRs(t *testing.T) {
	entries := []MSREntry{{Index: 0x10}, {Index: 0xc0000080}, {Index: 0x174}}
	buf := newMSRs(entries)
	want := []uint64{3, 0x10, 0, 0xc0000080, 0, 0x174, 0}
	if !reflect.DeepEqual(buf, want) {
		t.Errorf("newMSRs(%v) = %#x, want %#x", entries, buf, want)
	}
	buf[2], buf[4], buf[6] = 0x1111, 0x500, 0x999
	msrsData(buf, entries, 2) // the kernel read only two
	got := []uint64{entries[0].Data, entries[1].Data, entries[2].Data}
	if want := []uint64{0x1111, 0x500, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("msrsData(n=2) data = %#x, want %#x", got, want)
	}
	msrsData(buf, entries, 99) // a bad count must not index past buf
	if entries[2].Data != 0x999 {
		t.Errorf("msrsData(n=99) entries[2].Data = %#x, want 0x999", entries[2].Data)
	}
}
