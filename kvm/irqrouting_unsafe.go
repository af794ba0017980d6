package kvm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetGSIRouting replaces the VM's GSI routing table with routes
// (KVM_SET_GSI_ROUTING; needs CapIRQRouting, whose answer is the most
// entries KVM takes). Start from DefaultIRQRoutes to keep the PIC and
// IOAPIC pins working. Irqfds bound to a GSI follow its new route.
func (vm *VM) SetGSIRouting(routes []IRQRoute) error {
	buf := newIRQRouting(routes)
	// Safe: buf is a live Go slice of u64 words holding the header and
	// len(routes) entries, in the layout TestIRQRoutingMatchesStructs checks;
	// the kernel only reads it during the call.
	if _, err := ioctlPtr(vm.f, kvmSetGSIRouting, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_SET_GSI_ROUTING with %d entries: %w", len(routes), err)
	}
	return nil
}

// SignalMSI injects the MSI message (addr, data) at once, without a route
// (KVM_SIGNAL_MSI; needs CapSignalMSI). It reports whether the message
// reached a local APIC: false means the guest had it blocked, or no vCPU
// has the destination APIC ID.
func (vm *VM) SignalMSI(addr uint64, data uint32) (bool, error) {
	m := msi{AddressLo: uint32(addr), AddressHi: uint32(addr >> 32), Data: data}
	// Safe: m is an msi, the struct kvm_msi the kernel reads.
	r, err := ioctlPtr(vm.f, kvmSignalMSI, unsafe.Pointer(&m))
	if errors.Is(err, unix.EPERM) {
		// kvm_irq_delivery_to_apic's -1, "no local APIC matched the
		// destination", reaches user space as the ioctl's -1 with errno 1.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("KVM_SIGNAL_MSI addr %#x data %#x: %w", addr, data, err)
	}
	return r > 0, nil
}
