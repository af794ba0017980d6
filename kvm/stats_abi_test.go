package kvm

import "unsafe"

// abiStats are the binary statistics' structs, request and constants for
// ABIValues, keyed as testdata/kvmlayout.c prints them.
func abiStats() []ABIValue {
	var (
		h statsHeader
		d statsDescHead
	)
	off := func(c, field string, v uintptr) ABIValue {
		return ABIValue{"offsetof(struct " + c + ", " + field + ")", uint64(v)}
	}
	return []ABIValue{
		{"sizeof(struct kvm_stats_header)", uint64(unsafe.Sizeof(h))},
		off("kvm_stats_header", "name_size", unsafe.Offsetof(h.NameSize)),
		off("kvm_stats_header", "num_desc", unsafe.Offsetof(h.NumDesc)),
		off("kvm_stats_header", "id_offset", unsafe.Offsetof(h.IDOffset)),
		off("kvm_stats_header", "desc_offset", unsafe.Offsetof(h.DescOffset)),
		off("kvm_stats_header", "data_offset", unsafe.Offsetof(h.DataOffset)),
		// The name is a flexible array: the struct ends where it begins.
		{"sizeof(struct kvm_stats_desc)", uint64(unsafe.Sizeof(d))},
		off("kvm_stats_desc", "exponent", unsafe.Offsetof(d.Exponent)),
		off("kvm_stats_desc", "size", unsafe.Offsetof(d.Size)),
		off("kvm_stats_desc", "offset", unsafe.Offsetof(d.Offset)),
		off("kvm_stats_desc", "bucket_size", unsafe.Offsetof(d.BucketSize)),
		off("kvm_stats_desc", "name", unsafe.Sizeof(d)),
		{"KVM_GET_STATS_FD", uint64(kvmGetStatsFD)},
		{"KVM_STATS_TYPE_MASK", statsTypeMask},
		{"KVM_STATS_TYPE_CUMULATIVE", uint64(StatsCumulative)},
		{"KVM_STATS_TYPE_INSTANT", uint64(StatsInstant)},
		{"KVM_STATS_TYPE_PEAK", uint64(StatsPeak)},
		{"KVM_STATS_TYPE_LINEAR_HIST", uint64(StatsLinearHist)},
		{"KVM_STATS_TYPE_LOG_HIST", uint64(StatsLogHist)},
		{"KVM_STATS_UNIT_MASK", statsUnitMask},
		{"KVM_STATS_UNIT_NONE", uint64(StatsUnitNone)},
		{"KVM_STATS_UNIT_BYTES", uint64(StatsUnitBytes)},
		{"KVM_STATS_UNIT_SECONDS", uint64(StatsUnitSeconds)},
		{"KVM_STATS_UNIT_CYCLES", uint64(StatsUnitCycles)},
		{"KVM_STATS_UNIT_BOOLEAN", uint64(StatsUnitBoolean)},
		{"KVM_STATS_BASE_MASK", statsBaseMask},
		{"KVM_STATS_BASE_POW10", statsBasePow10},
		{"KVM_STATS_BASE_POW2", statsBasePow2},
	}
}
