package machine

import (
	"fmt"

	"github.com/govmm/govmm/devices"
)

// PITMode says which 8254 PIT the VM has (govmm -pit).
type PITMode int

const (
	// PITKernel is KVM's in-kernel PIT (KVM_CREATE_PIT2): the default;
	// the guest's PIT accesses never leave the kernel.
	PITKernel PITMode = iota
	// PITUser is devices.PIT: every PIT access exits to govmm, and IRQ 0
	// comes from a host timer.
	PITUser
)

// ParsePITMode reads the -pit flag's words.
func ParsePITMode(s string) (PITMode, error) {
	switch s {
	case "kernel":
		return PITKernel, nil
	case "user":
		return PITUser, nil
	}
	return 0, fmt.Errorf("PIT %q: give kernel (KVM's, the default) or user (govmm's model, whose accesses exit)", s)
}

func (p PITMode) String() string {
	if p == PITUser {
		return "user"
	}
	return "kernel"
}

// setupPIT registers the userspace PIT, for -pit user, at ports 0x40-0x43
// and 0x61; IRQ 0 is GSI 0 (the master PIC's pin 0 and IOAPIC pin 0).
func (m *Machine) setupPIT() error {
	if m.cfg.PIT != PITUser {
		return nil
	}
	m.pit = devices.NewPIT(m.line(devices.IRQPIT), devices.HostClock{})
	if err := m.plat.io.Register(devices.PortPIT, devices.PortPITSize, "pit", m.pit); err != nil {
		return err
	}
	return m.plat.io.Register(devices.PortSpeaker, 1, "pit (port 0x61)", devices.Offset(m.pit, devices.PITPort61Offset))
}

// reportDevices adds the PCI bus and the userspace PIT to the verbose
// report.
func (m *Machine) reportDevices() {
	if m.pci != nil {
		fmt.Fprintf(m.log, "govmm: %s\n", m.pci.report())
	}
	if m.pit != nil {
		ticks, errs := m.pit.Stats()
		fmt.Fprintf(m.log, "govmm: pit (user): %d IRQ 0 edge(s) raised, %d failed\n", ticks, errs)
	}
}
