package kvm

import "unsafe"

// abiSaveState are savestate.go's structs, requests and constants for
// ABIValues, keyed as testdata/kvmlayout.c prints them.
func abiSaveState() []ABIValue {
	var (
		x  XCR
		xs XCRs
		d  DebugRegs
	)
	off := func(c, field string, v uintptr) ABIValue {
		return ABIValue{"offsetof(struct " + c + ", " + field + ")", uint64(v)}
	}
	return []ABIValue{
		{"sizeof(struct kvm_xcr)", uint64(unsafe.Sizeof(x))},
		off("kvm_xcr", "value", unsafe.Offsetof(x.Value)),
		{"sizeof(struct kvm_xcrs)", uint64(unsafe.Sizeof(xs))},
		off("kvm_xcrs", "flags", unsafe.Offsetof(xs.Flags)),
		off("kvm_xcrs", "xcrs", unsafe.Offsetof(xs.XCRs)),
		{"sizeof(struct kvm_debugregs)", uint64(unsafe.Sizeof(d))},
		off("kvm_debugregs", "dr6", unsafe.Offsetof(d.DR6)),
		off("kvm_debugregs", "dr7", unsafe.Offsetof(d.DR7)),
		off("kvm_debugregs", "flags", unsafe.Offsetof(d.Flags)),
		// The indices are a flexible array: the struct ends where they begin.
		{"sizeof(struct kvm_msr_list)", uint64(unsafe.Sizeof(msrListHeader{}))},
		{"KVM_MAX_XCRS", MaxXCRs},
		{"KVM_GET_MSR_INDEX_LIST", uint64(kvmGetMSRIndexList)},
		{"KVM_GET_XCRS", uint64(kvmGetXCRs)},
		{"KVM_SET_XCRS", uint64(kvmSetXCRs)},
		{"KVM_GET_DEBUGREGS", uint64(kvmGetDebugRegs)},
		{"KVM_SET_DEBUGREGS", uint64(kvmSetDebugRegs)},
		{"KVM_GET_TSC_KHZ", uint64(kvmGetTSCKHz)},
		{"KVM_SET_TSC_KHZ", uint64(kvmSetTSCKHz)},
		{"KVM_KVMCLOCK_CTRL", uint64(kvmKVMClockCtrl)},
		{"sizeof(struct kvm_device_attr)", uint64(unsafe.Sizeof(deviceAttr{}))},
		off("kvm_device_attr", "group", unsafe.Offsetof(deviceAttr{}.Group)),
		off("kvm_device_attr", "attr", unsafe.Offsetof(deviceAttr{}.Attr)),
		off("kvm_device_attr", "addr", unsafe.Offsetof(deviceAttr{}.Addr)),
		{"KVM_SET_DEVICE_ATTR", uint64(kvmSetDeviceAttr)},
		{"KVM_GET_DEVICE_ATTR", uint64(kvmGetDeviceAttr)},
		{"KVM_HAS_DEVICE_ATTR", uint64(kvmHasDeviceAttr)},
		{"KVM_VCPU_TSC_CTRL", vcpuTSCCtrl},
		{"KVM_VCPU_TSC_OFFSET", vcpuTSCOffset},
	}
}
