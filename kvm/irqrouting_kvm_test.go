package kvm_test

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// newIRQChipVM opens KVM and returns a VM with the in-kernel irqchip.
func newIRQChipVM(t *testing.T) (*kvm.System, *kvm.VM) {
	t.Helper()
	kvmtest.Require(t)
	sys, err := kvm.Open(kvmtest.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	return sys, vm
}

// TestGSIRoutingAndMSI sets a routing table with an MSI route, binds an
// irqfd to it and signals it, and sends an MSI directly: the ioctls the PCI
// model's MSI-X delivery rests on. Whether the interrupt reaches a guest is
// machine's test (the test guest's mode=pci).
func TestGSIRoutingAndMSI(t *testing.T) {
	sys, vm := newIRQChipVM(t)
	for _, c := range []kvm.Cap{kvm.CapIRQRouting, kvm.CapIRQFD, kvm.CapIOEventFD, kvm.CapSignalMSI} {
		n, err := sys.CheckExtension(c)
		t.Logf("%v = %d", c, n)
		if err != nil || n == 0 {
			t.Errorf("CheckExtension(%v) = %d, %v; govmm's PCI model falls back without it, but this test needs it", c, n, err)
		}
	}
	routes := append(kvm.DefaultIRQRoutes(), kvm.IRQRoute{GSI: kvm.IOAPICPins, Kind: kvm.IRQRouteMSI, Addr: kvm.MSIAddrBase, Data: 0x41})
	if err := vm.SetGSIRouting(routes); err != nil {
		t.Fatalf("SetGSIRouting(defaults + msi) = %v", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := vm.IRQFD(efd, kvm.IOAPICPins); err != nil {
		t.Fatalf("IRQFD(eventfd, gsi 24) = %v", err)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := unix.Write(efd, one); err != nil {
		t.Errorf("signal the irqfd: %v", err)
	}
	if err := vm.RemoveIRQFD(efd, kvm.IOAPICPins); err != nil {
		t.Errorf("RemoveIRQFD = %v", err)
	}
	// No vCPU has APIC ID 0 yet: the message reaches no one, which is not
	// an error.
	if ok, err := vm.SignalMSI(kvm.MSIAddrBase, 0x41); ok || err != nil {
		t.Errorf("SignalMSI with no vCPUs = %v, %v, want false, nil", ok, err)
	}
	// An IOAPIC pin past the 24 KVM has is refused, and says which ioctl.
	bad := kvm.IRQRoute{GSI: 30, Kind: kvm.IRQRouteIRQChip, Chip: kvm.IRQChipIOAPIC, Pin: 40}
	if err := vm.SetGSIRouting([]kvm.IRQRoute{bad}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SetGSIRouting(ioapic pin 40) = %v, want EINVAL", err)
	}
}
