package machine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
)

// Device names an optional device a VM may be given (govmm -device).
type Device string

// The optional devices.
const (
	// DevicePCITestDev is devices/pci's test device: BARs, MSI-X, INTx.
	DevicePCITestDev Device = "pci-testdev"
)

// ParseDevice reads a -device flag's word: pci-testdev, or a virtio
// device with its options (virtio.go).
func ParseDevice(s string) (Device, error) {
	if Device(s) == DevicePCITestDev {
		return DevicePCITestDev, nil
	}
	if isVirtio(s) {
		if _, err := parseVirtio(s); err != nil {
			return "", err
		}
		return Device(s), nil
	}
	return "", fmt.Errorf("device %q: the devices are %s, %s, %s and %s", s, DevicePCITestDev, virtioBlk, virtioNet, virtioRNG)
}

// pciMachine is the VM's PCI bus and the plumbing under it.
type pciMachine struct {
	irqs     *interrupts
	bus      *pci.Bus
	testDevs []*pci.TestDev
	virtio   []*virtioDev // virtio.go
}

// setupPCI builds PCI bus 0 (the host bridge, then the devices Config
// asks for), and registers configuration mechanism #1 and the ECAM window
// on the platform's buses. The windows are boot/layout.go's, which the
// ACPI tables declare too.
func (m *Machine) setupPCI() error {
	caps, err := probeIRQCaps(m.sys)
	if err != nil {
		return err
	}
	p := &pciMachine{irqs: newInterrupts(m.vm, caps)}
	if m.cfg.Verbose {
		fmt.Fprintf(m.log, "govmm: %v\n", caps)
	}
	ramEnd := m.mem.Regions()[len(m.mem.Regions())-1].End()
	mmio64, mmio64Size := boot.PCIMMIO64(ramEnd)
	p.bus, err = pci.NewBus(pci.BusConfig{
		IO: m.plat.io, MMIO: m.plat.mmio, Interrupts: p.irqs,
		MMIO32:  pci.Window{Start: uint64(boot.PCIMMIO32Start), Size: boot.PCIMMIO32Size},
		MMIO64:  pci.Window{Start: uint64(mmio64), Size: mmio64Size},
		IOPorts: pci.Window{Start: boot.PCIIOPortStart, Size: boot.PCIIOPortSize},
		INTxGSI: func(slot, pin int) uint32 { return uint32(boot.PCIINTxGSI(slot, pin)) },
	})
	if err != nil {
		return err
	}
	m.pci = p
	for i, d := range m.cfg.Devices {
		if isVirtio(string(d)) {
			if err := m.addVirtio(p, string(d), i); err != nil {
				return err
			}
			continue
		}
		if d != DevicePCITestDev {
			return fmt.Errorf("device %q: not a device govmm has", d)
		}
		td, err := pci.NewTestDev()
		if err != nil {
			return err
		}
		slot, err := p.bus.Add(td.Function())
		if err != nil {
			return fmt.Errorf("-device %s: %w", d, err)
		}
		p.testDevs = append(p.testDevs, td)
		if m.cfg.Verbose {
			f := td.Function()
			fmt.Fprintf(m.log, "govmm: pci %s: %s (%04x:%04x), BAR0 %#x, BAR1 port %#x, BAR2 %#x, INTA on GSI %d\n",
				pci.SlotName(slot), d, pci.VendorID, pci.TestDevDeviceID, f.BARAddress(0), f.BARAddress(1), f.BARAddress(2), boot.PCIINTxGSI(slot, 0))
		}
	}
	if err := m.plat.io.Register(pci.PortConfigAddress, pci.PortConfigSize, "pci config (mechanism #1)", p.bus.ConfigPorts()); err != nil {
		return err
	}
	return m.plat.mmio.Register(uint64(boot.PCIeECAMStart), boot.PCIeECAMSize, "pci ecam", p.bus.ECAM())
}

// close releases the bus's vectors and doorbells.
func (p *pciMachine) close() error {
	if p == nil {
		return nil
	}
	return errors.Join(p.closeVirtio(), p.bus.Close())
}

// report adds the PCI devices' failed interrupt deliveries and undecoded
// BARs to the verbose report.
func (p *pciMachine) report() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pci: %d BAR(s) left undecoded, %d doorbell ring(s) through ioeventfds", p.bus.Undecoded.Load(), p.irqs.rings.Load())
	for i, d := range p.testDevs {
		fmt.Fprintf(&b, "; pci-testdev %d: %d interrupt(s) asked for, %d failed", i, d.Count(), d.Function().IRQErrors())
	}
	b.WriteString(p.virtioReport())
	return b.String()
}

// PCITestDevs are the VM's pci-testdev devices, in -device order.
func (m *Machine) PCITestDevs() []*pci.TestDev {
	if m.pci == nil {
		return nil
	}
	return m.pci.testDevs
}

var errNoPCI = errors.New("the machine has no PCI bus")

// PCIBus is the VM's PCI bus 0.
func (m *Machine) PCIBus() (*pci.Bus, error) {
	if m.pci == nil {
		return nil, errNoPCI
	}
	return m.pci.bus, nil
}

var _ devices.Interrupts = (*interrupts)(nil)
