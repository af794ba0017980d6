package kvm

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// statsFile builds a binary statistics file as KVM lays it out: header,
// id, descriptors, then the data block.
type statFixture struct {
	name   string
	flags  uint32
	values []uint64
}

func statsFile(nameSize int, id string, stats []statFixture) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	name := func(s string) []byte {
		n := make([]byte, nameSize)
		copy(n, s)
		return n
	}
	idOff := uint32(24)
	descOff := idOff + uint32(nameSize)
	dataOff := descOff + uint32(len(stats)*(16+nameSize))
	w(statsHeader{NameSize: uint32(nameSize), NumDesc: uint32(len(stats)), IDOffset: idOff, DescOffset: descOff, DataOffset: dataOff})
	b.Write(name(id))
	off := uint32(0)
	for _, s := range stats {
		w(statsDescHead{Flags: s.flags, Size: uint16(len(s.values)), Offset: off})
		b.Write(name(s.name))
		off += 8 * uint32(len(s.values))
	}
	for _, s := range stats {
		w(s.values)
	}
	return b.Bytes()
}

func TestParseStats(t *testing.T) {
	file := statsFile(48, "kvm-1234/vcpu-0", []statFixture{
		{"exits", uint32(StatsCumulative), []uint64{42}},
		{"io_exits", uint32(StatsCumulative), []uint64{40}},
		{"halt_poll_success_hist", uint32(StatsLogHist) | uint32(StatsUnitSeconds) | statsBasePow10, []uint64{1, 2, 3}},
		{"guest_mode", uint32(StatsInstant) | uint32(StatsUnitBoolean), []uint64{1}},
	})
	s, err := ParseStats(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("ParseStats() = %v", err)
	}
	if s.ID != "kvm-1234/vcpu-0" || len(s.Descs) != 4 || s.DataSize != 6*8 {
		t.Fatalf("ParseStats() = id %q, %d descriptors, %d data bytes, want kvm-1234/vcpu-0, 4, 48", s.ID, len(s.Descs), s.DataSize)
	}
	if d := s.Descs[2]; d.Name != "halt_poll_success_hist" || d.Type != StatsLogHist || d.Unit != StatsUnitSeconds || d.Pow2 || d.Size != 3 {
		t.Errorf("descriptor 2 = %+v, want the log histogram in seconds with 3 buckets", d)
	}
	v, _, err := s.Values(bytes.NewReader(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]uint64{"exits": {42}, "io_exits": {40}, "halt_poll_success_hist": {1, 2, 3}, "guest_mode": {1}} {
		if got := v[name]; len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
			t.Errorf("Values()[%q] = %v, want %v", name, got, want)
		}
	}
}

func TestParseStatsErrors(t *testing.T) {
	good := statsFile(48, "vm", []statFixture{{"exits", 0, []uint64{1}}})
	patch := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"short header", good[:10], "reading the header"},
		{"name_size zero", patch(4, 0), "name_size 0"},
		{"name_size huge", patch(4, 1<<20), "name_size 1048576"},
		{"too many descriptors", patch(8, 1<<20), "1048576 descriptors"},
		{"descriptors past the end", patch(16, 1<<30), "reading 1 descriptors"},
		{"id past the end", patch(12, 1<<30), "reading the id"},
		{"values far away", patch(24+48+8, 1<<30), "beyond any real file"},
	}
	for _, tt := range tests {
		if _, err := ParseStats(bytes.NewReader(tt.file)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseStats() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// FuzzParseStats holds the parser to its promise on any bytes: an error or
// a schema whose every value lies inside the data block it sizes, which
// Values then reads without going out of bounds.
func FuzzParseStats(f *testing.F) {
	f.Add(statsFile(48, "kvm-1/vcpu-0", []statFixture{{"exits", 0, []uint64{7}}, {"hist", uint32(StatsLinearHist), []uint64{1, 2}}}))
	f.Add(statsFile(8, "", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStats(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, d := range s.Descs {
			if end := int(d.Offset) + 8*d.Size; end > s.DataSize {
				t.Fatalf("descriptor %q ends at %d, past the data size %d", d.Name, end, s.DataSize)
			}
		}
		v, _, err := s.Values(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		count := map[string]int{}
		for _, d := range s.Descs {
			count[d.Name]++
		}
		for _, d := range s.Descs {
			// Two descriptors may share a name; then the later one wins.
			if count[d.Name] == 1 && len(v[d.Name]) != d.Size {
				t.Fatalf("Values()[%q] has %d values, want %d", d.Name, len(v[d.Name]), d.Size)
			}
		}
	})
}
