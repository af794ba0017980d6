package kvm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MSRIndexList returns the MSRs KVM saves and restores for a vCPU
// (KVM_GET_MSR_INDEX_LIST on /dev/kvm): what a snapshot of the vCPU must
// carry. KVM answers E2BIG with the count it needs, and the call is made
// again with that room.
func (s *System) MSRIndexList() ([]uint32, error) {
	n := 0
	for {
		buf := make([]uint32, 1+n) // the nmsrs word, then the indices
		buf[0] = uint32(n)
		// Safe: buf is a live slice holding a struct kvm_msr_list with
		// room for the n indices its nmsrs says the kernel may write.
		_, err := ioctlPtr(s.f, kvmGetMSRIndexList, unsafe.Pointer(&buf[0]))
		switch {
		case err == nil:
			return buf[1 : 1+min(int(buf[0]), n)], nil
		case errors.Is(err, unix.E2BIG) && int(buf[0]) > n && int(buf[0]) <= maxMSRIndices:
			n = int(buf[0])
		default:
			return nil, fmt.Errorf("KVM_GET_MSR_INDEX_LIST with room for %d MSRs (KVM asked for %d): %w", n, buf[0], err)
		}
	}
}

// GetXCRs reads the extended control registers (KVM_GET_XCRS).
func (v *VCPU) GetXCRs(x *XCRs) error {
	return v.ioctlStruct("KVM_GET_XCRS", kvmGetXCRs, unsafe.Pointer(x)) // Safe: *XCRs mirrors struct kvm_xcrs.
}

// SetXCRs writes them (KVM_SET_XCRS).
func (v *VCPU) SetXCRs(x *XCRs) error {
	return v.ioctlStruct("KVM_SET_XCRS", kvmSetXCRs, unsafe.Pointer(x)) // Safe: *XCRs mirrors struct kvm_xcrs.
}

// GetDebugRegs reads DR0-DR3, DR6 and DR7 (KVM_GET_DEBUGREGS).
func (v *VCPU) GetDebugRegs(d *DebugRegs) error {
	return v.ioctlStruct("KVM_GET_DEBUGREGS", kvmGetDebugRegs, unsafe.Pointer(d)) // Safe: *DebugRegs mirrors struct kvm_debugregs.
}

// SetDebugRegs writes them (KVM_SET_DEBUGREGS).
func (v *VCPU) SetDebugRegs(d *DebugRegs) error {
	return v.ioctlStruct("KVM_SET_DEBUGREGS", kvmSetDebugRegs, unsafe.Pointer(d)) // Safe: *DebugRegs mirrors struct kvm_debugregs.
}

// GetTSCKHz returns the guest TSC's frequency in kHz (KVM_GET_TSC_KHZ;
// needs KVM_CAP_GET_TSC_KHZ).
func (v *VCPU) GetTSCKHz() (uint32, error) {
	r, err := ioctl(v.f, kvmGetTSCKHz, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_TSC_KHZ on vCPU %d: %w", v.id, err)
	}
	return uint32(r), nil
}

// SetTSCKHz sets the guest TSC's frequency (KVM_SET_TSC_KHZ). KVM scales
// the TSC when the host's differs, which needs KVM_CAP_TSC_CONTROL; a host
// without it accepts only its own frequency (within KVM's tolerance).
func (v *VCPU) SetTSCKHz(khz uint32) error {
	if _, err := ioctl(v.f, kvmSetTSCKHz, uintptr(khz)); err != nil {
		return fmt.Errorf("KVM_SET_TSC_KHZ %d on vCPU %d: %w", khz, v.id, err)
	}
	return nil
}

// KVMClockCtrl tells a guest that uses kvmclock that the VMM held the vCPU
// stopped (KVM_KVMCLOCK_CTRL: it sets PVCLOCK_GUEST_STOPPED), so its soft
// lockup watchdog does not take the pause for a hang. KVM fails it with
// EINVAL while the guest has not set up kvmclock; IsNoKVMClock tells.
func (v *VCPU) KVMClockCtrl() error {
	if _, err := ioctl(v.f, kvmKVMClockCtrl, 0); err != nil {
		return fmt.Errorf("KVM_KVMCLOCK_CTRL on vCPU %d: %w", v.id, err)
	}
	return nil
}

// IsNoKVMClock reports whether err is KVMClockCtrl's answer for a guest
// that has not turned kvmclock on (a test guest, or Linux before it set
// its clock source up): nothing to tell it.
func IsNoKVMClock(err error) bool { return errors.Is(err, unix.EINVAL) }
