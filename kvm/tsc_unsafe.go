package kvm

import (
	"fmt"
	"unsafe"
)

// The TSC offset sets the guest's TSC exactly: guest TSC = host TSC
// (scaled, on hosts that scale) + offset. Writing IA32_TSC instead goes
// through KVM's synchronization heuristics, which take a write within a
// second of what the TSC would read for an attempt to line vCPUs up and
// keep the TSC running as it was (kvm_synchronize_tsc): a guest paused for
// less than a second, or saved less than a second after it started, would
// not get its TSC back. Snapshots and migration use the offset where KVM
// has it (Linux 5.16 and later).

// HasTSCOffset reports whether KVM lets the vCPU's TSC offset be read and
// set (KVM_HAS_DEVICE_ATTR of KVM_VCPU_TSC_OFFSET).
func (v *VCPU) HasTSCOffset() bool {
	a := deviceAttr{Group: vcpuTSCCtrl, Attr: vcpuTSCOffset}
	// Safe: a is a deviceAttr, the struct kvm_device_attr the kernel reads.
	_, err := ioctlPtr(v.f, kvmHasDeviceAttr, unsafe.Pointer(&a))
	return err == nil
}

// TSCOffset reads the offset of the guest's TSC from the host's
// (KVM_GET_DEVICE_ATTR of KVM_VCPU_TSC_OFFSET).
func (v *VCPU) TSCOffset() (uint64, error) {
	var off uint64
	// Safe: Addr is the address of off, the u64 the kernel writes; off
	// lives on this frame through the call.
	a := deviceAttr{Group: vcpuTSCCtrl, Attr: vcpuTSCOffset, Addr: uint64(uintptr(unsafe.Pointer(&off)))}
	// Safe: a is a deviceAttr, the struct kvm_device_attr the kernel reads.
	if _, err := ioctlPtr(v.f, kvmGetDeviceAttr, unsafe.Pointer(&a)); err != nil {
		return 0, fmt.Errorf("KVM_GET_DEVICE_ATTR KVM_VCPU_TSC_OFFSET on vCPU %d: %w", v.id, err)
	}
	return off, nil
}

// SetTSCOffset sets it (KVM_SET_DEVICE_ATTR of KVM_VCPU_TSC_OFFSET).
func (v *VCPU) SetTSCOffset(off uint64) error {
	// Safe: Addr is the address of off, the u64 the kernel reads; off
	// lives on this frame through the call.
	a := deviceAttr{Group: vcpuTSCCtrl, Attr: vcpuTSCOffset, Addr: uint64(uintptr(unsafe.Pointer(&off)))}
	// Safe: a is a deviceAttr, the struct kvm_device_attr the kernel reads.
	if _, err := ioctlPtr(v.f, kvmSetDeviceAttr, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("KVM_SET_DEVICE_ATTR KVM_VCPU_TSC_OFFSET %#x on vCPU %d: %w", off, v.id, err)
	}
	return nil
}
