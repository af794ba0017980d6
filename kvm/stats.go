package kvm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// KVM's binary statistics (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst
// section 4.134 and "The binary statistics" in linux/kvm.h): a file
// descriptor on a VM or a vCPU whose contents are a header, an id string,
// one descriptor per statistic and a data block of u64 values, read with
// pread. The descriptors never change; the data block is current at each
// read. This is how a VMM sees the exits KVM handled itself (halts, the
// in-kernel PIT and APIC, page faults), which never reach user space.

// statsHeader mirrors struct kvm_stats_header.
type statsHeader struct {
	Flags      uint32
	NameSize   uint32 // bytes of each name, its NUL included
	NumDesc    uint32
	IDOffset   uint32
	DescOffset uint32
	DataOffset uint32
}

// statsDescHead mirrors struct kvm_stats_desc up to its flexible name.
type statsDescHead struct {
	Flags      uint32
	Exponent   int16
	Size       uint16 // how many u64 values
	Offset     uint32 // from the data block's start
	BucketSize uint32
}

// StatsType is the kind of a statistic (KVM_STATS_TYPE_*).
type StatsType uint32

// StatsType values.
const (
	StatsCumulative StatsType = 0 << statsTypeShift // KVM_STATS_TYPE_CUMULATIVE: a count that only grows
	StatsInstant    StatsType = 1 << statsTypeShift // KVM_STATS_TYPE_INSTANT: a level
	StatsPeak       StatsType = 2 << statsTypeShift // KVM_STATS_TYPE_PEAK: the highest level seen
	StatsLinearHist StatsType = 3 << statsTypeShift // KVM_STATS_TYPE_LINEAR_HIST
	StatsLogHist    StatsType = 4 << statsTypeShift // KVM_STATS_TYPE_LOG_HIST

	statsTypeShift = 0
	statsTypeMask  = 0xF << statsTypeShift // KVM_STATS_TYPE_MASK
)

// StatsUnit is what a statistic counts (KVM_STATS_UNIT_*).
type StatsUnit uint32

// StatsUnit values.
const (
	StatsUnitNone    StatsUnit = 0 << statsUnitShift // KVM_STATS_UNIT_NONE: events
	StatsUnitBytes   StatsUnit = 1 << statsUnitShift // KVM_STATS_UNIT_BYTES
	StatsUnitSeconds StatsUnit = 2 << statsUnitShift // KVM_STATS_UNIT_SECONDS
	StatsUnitCycles  StatsUnit = 3 << statsUnitShift // KVM_STATS_UNIT_CYCLES
	StatsUnitBoolean StatsUnit = 4 << statsUnitShift // KVM_STATS_UNIT_BOOLEAN

	statsUnitShift = 4
	statsUnitMask  = 0xF << statsUnitShift // KVM_STATS_UNIT_MASK
)

// Stats base, the radix of a statistic's exponent (KVM_STATS_BASE_*).
const (
	statsBasePow10 = 0 << statsBaseShift // KVM_STATS_BASE_POW10
	statsBasePow2  = 1 << statsBaseShift // KVM_STATS_BASE_POW2
	statsBaseShift = 8
	statsBaseMask  = 0xF << statsBaseShift // KVM_STATS_BASE_MASK
)

// Limits on what ParseStats accepts, far above what KVM writes (6.x: a
// name_size of 48, about 40 vCPU and 20 VM statistics of at most 32 values).
const (
	maxStatsNameSize = 1024
	maxStatsDescs    = 4096
)

// StatsDesc describes one statistic.
type StatsDesc struct {
	Name     string
	Type     StatsType
	Unit     StatsUnit
	Pow2     bool  // the exponent is of 2 (else of 10)
	Exponent int16 // value × base^Exponent is in Unit
	Size     int   // how many values: 1, or a histogram's buckets
	Offset   uint32
	Bucket   uint32 // a linear histogram's bucket size
}

// StatsSchema is what a stats file descriptor holds besides its values:
// the id and the descriptors, in the file's order.
type StatsSchema struct {
	ID    string
	Descs []StatsDesc
	// DataOffset is where the values start; DataSize how many bytes all
	// descriptors' values span from there.
	DataOffset int64
	DataSize   int
}

// ParseStats reads the header, id and descriptors of a binary statistics
// file, following the layout of linux/kvm.h. Every offset and size is
// checked against the limits above and for overflow, so a corrupt file
// gives an error, never a panic or a huge allocation.
func ParseStats(r io.ReaderAt) (*StatsSchema, error) {
	var hb [24]byte
	if _, err := r.ReadAt(hb[:], 0); err != nil {
		return nil, fmt.Errorf("kvm stats: reading the header: %w", err)
	}
	h := statsHeader{
		Flags: le.Uint32(hb[0:]), NameSize: le.Uint32(hb[4:]), NumDesc: le.Uint32(hb[8:]),
		IDOffset: le.Uint32(hb[12:]), DescOffset: le.Uint32(hb[16:]), DataOffset: le.Uint32(hb[20:]),
	}
	if h.NameSize == 0 || h.NameSize > maxStatsNameSize {
		return nil, fmt.Errorf("kvm stats: name_size %d, want 1 to %d", h.NameSize, maxStatsNameSize)
	}
	if h.NumDesc > maxStatsDescs {
		return nil, fmt.Errorf("kvm stats: %d descriptors, at most %d expected", h.NumDesc, maxStatsDescs)
	}
	s := &StatsSchema{DataOffset: int64(h.DataOffset)}
	name := make([]byte, h.NameSize)
	if _, err := r.ReadAt(name, int64(h.IDOffset)); err != nil {
		return nil, fmt.Errorf("kvm stats: reading the id at %#x: %w", h.IDOffset, err)
	}
	s.ID = cString(name)
	descSize := int64(16) + int64(h.NameSize) // sizeof(struct kvm_stats_desc) + the name
	block := make([]byte, descSize*int64(h.NumDesc))
	if _, err := r.ReadAt(block, int64(h.DescOffset)); err != nil && !(errors.Is(err, io.EOF) && len(block) == 0) {
		return nil, fmt.Errorf("kvm stats: reading %d descriptors at %#x: %w", h.NumDesc, h.DescOffset, err)
	}
	for i := range int64(h.NumDesc) {
		b := block[i*descSize : (i+1)*descSize]
		d := statsDescHead{Flags: le.Uint32(b[0:]), Exponent: int16(le.Uint16(b[4:])), Size: le.Uint16(b[6:]),
			Offset: le.Uint32(b[8:]), BucketSize: le.Uint32(b[12:])}
		end := int64(d.Offset) + 8*int64(d.Size) // at most 2^32 + 2^19: no overflow
		if end > 1<<24 {
			return nil, fmt.Errorf("kvm stats: descriptor %d's values end at %#x past the data block's start, beyond any real file", i, end)
		}
		s.DataSize = max(s.DataSize, int(end))
		s.Descs = append(s.Descs, StatsDesc{
			Name:     cString(b[16:]),
			Type:     StatsType(d.Flags & statsTypeMask),
			Unit:     StatsUnit(d.Flags & statsUnitMask),
			Pow2:     d.Flags&statsBaseMask == statsBasePow2,
			Exponent: d.Exponent,
			Size:     int(d.Size),
			Offset:   d.Offset,
			Bucket:   d.BucketSize,
		})
	}
	return s, nil
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Values reads the current data block from r and returns each
// descriptor's values, keyed by name; buf is reused if it is large enough.
func (s *StatsSchema) Values(r io.ReaderAt, buf []byte) (map[string][]uint64, []byte, error) {
	if cap(buf) < s.DataSize {
		buf = make([]byte, s.DataSize)
	}
	buf = buf[:s.DataSize]
	if _, err := r.ReadAt(buf, s.DataOffset); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, buf, fmt.Errorf("kvm stats: reading %d bytes of values at %#x: %w", len(buf), s.DataOffset, err)
	}
	out := make(map[string][]uint64, len(s.Descs))
	for _, d := range s.Descs {
		v := make([]uint64, d.Size)
		for i := range v {
			v[i] = le.Uint64(buf[int(d.Offset)+8*i:])
		}
		out[d.Name] = v
	}
	return out, buf, nil
}

// Stats is an open binary statistics file descriptor of a VM or a vCPU.
type Stats struct {
	f   *os.File
	buf []byte
	StatsSchema
}

func openStats(f *os.File) (*Stats, error) {
	s, err := ParseStats(f)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return &Stats{f: f, StatsSchema: *s}, nil
}

// StatsFD opens the VM's binary statistics (KVM_GET_STATS_FD; needs
// KVM_CAP_BINARY_STATS_FD).
func (vm *VM) StatsFD() (*Stats, error) {
	fd, err := ioctl(vm.f, kvmGetStatsFD, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_STATS_FD on the VM: %w", err)
	}
	return openStats(os.NewFile(fd, "kvm-vm-stats"))
}

// StatsFD opens the vCPU's binary statistics (KVM_GET_STATS_FD).
func (v *VCPU) StatsFD() (*Stats, error) {
	fd, err := ioctl(v.f, kvmGetStatsFD, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_STATS_FD on vCPU %d: %w", v.id, err)
	}
	return openStats(os.NewFile(fd, fmt.Sprintf("kvm-vcpu%d-stats", v.id)))
}

// Read returns every statistic's current values by name. It may be
// called from any goroutine, one at a time.
func (s *Stats) Read() (map[string][]uint64, error) {
	m, buf, err := s.Values(s.f, s.buf)
	s.buf = buf
	return m, err
}

// Counters returns the cumulative single-value statistics (the event
// counts, such as "exits" and "io_exits") by name.
func (s *Stats) Counters() (map[string]uint64, error) {
	all, err := s.Read()
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64)
	for _, d := range s.Descs {
		if d.Type == StatsCumulative && d.Size == 1 {
			out[d.Name] = all[d.Name][0]
		}
	}
	return out, nil
}

// Names lists the statistics' names, sorted.
func (s *Stats) Names() []string {
	var n []string
	for _, d := range s.Descs {
		n = append(n, d.Name)
	}
	sort.Strings(n)
	return n
}

// Close closes the file descriptor.
func (s *Stats) Close() error { return s.f.Close() }
