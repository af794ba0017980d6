package machine

import (
	"fmt"

	"github.com/govmm/govmm/acpi"
	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// The ACPI platform govmm gives a guest, and why it is a full ACPI
// platform rather than a hardware-reduced one: with PM1 register blocks,
// an SCI and a fixed-feature power button, Linux keeps booting the PC way
// it always has here (the 8259 PIC and the PIT stay, and its timer
// checks run as before), where the hardware-reduced flag would make it
// drop the legacy PIC and skip the PIT (acpi_reduced_hw_init), which the
// userspace PIT (-pit user) needs. The power button and S5 then take no
// AML at all: ACPICA handles the fixed power button event itself and
// powers off by writing \_S5's SLP_TYP with SLP_EN to PM1a_CNT, which
// devices.ACPIPM turns into the end of the VM.
const (
	// sleepTypeS5 is the SLP_TYP value of S5 (any 3-bit value will do;
	// the DSDT's \_S5 and the device agree on it).
	sleepTypeS5 = 5
	// resetValue is what the guest writes to the FADT's RESET_REG to reset.
	resetValue = 1
	// ioapicID is the ID in the I/O APIC's ID register: KVM's in-kernel
	// I/O APIC starts with 0.
	ioapicID = 0
)

// isaOverrides are the MADT's interrupt source overrides: they say how
// KVM's in-kernel I/O APIC is wired. KVM's default GSI routing
// (kvm_setup_default_irq_routing) sends GSI n to I/O APIC pin n for all
// 24 pins, so ISA IRQ 0, the PIT, stays on pin 0: there is no 0-to-2
// override as on a PC whose chipset wires the PIT to pin 2 (QEMU makes
// that true by routing GSI 0 to pin 2 itself; govmm does not, so a
// KVM_SET_GSI_ROUTING that replaces the default table must keep GSI 0 on
// pin 0). The one override is the SCI's: ISA IRQ 9 is level-triggered
// and active-low, as the ACPI specification defines the SCI (KVM's I/O
// APIC ignores the polarity bit; an asserted KVM_IRQ_LINE is asserted).
var isaOverrides = []acpi.Override{
	{Source: devices.IRQSCI, GSI: devices.IRQSCI, Flags: acpi.PolarityLow | acpi.TriggerLevel},
}

// ramEnd is where the RAM of a guest of size bytes ends (exclusive):
// memory.New lays out RAM from 0, moving what would fall in the MMIO hole
// above 4 GiB.
func ramEnd(size uint64) memory.GuestAddr {
	if size <= uint64(memory.HoleStart) {
		return memory.GuestAddr(size)
	}
	return memory.HoleEnd + memory.GuestAddr(size-uint64(memory.HoleStart))
}

// acpiConfig describes this machine to the acpi package: every address
// from boot/layout.go, every port and IRQ from the devices.
func acpiConfig(cpus int, memSize uint64) *acpi.Config {
	mmio64, mmio64Size := boot.PCIMMIO64(ramEnd(memSize))
	return &acpi.Config{
		RSDPAddr:        uint64(boot.RSDPAddr),
		TablesAddr:      uint64(boot.ACPITablesAddr),
		TablesSize:      boot.ACPITablesSize,
		APICIDs:         vcpu.Topology{Cores: cpus}.APICIDs(),
		LAPICAddr:       uint32(boot.LAPICAddr),
		IOAPICAddr:      uint32(boot.IOAPICAddr),
		IOAPICID:        ioapicID,
		Overrides:       isaOverrides,
		PM1aEventPort:   devices.PortACPIPM + devices.ACPIPMStatus,
		PM1aControlPort: devices.PortACPIPM + devices.ACPIPMControl,
		ResetPort:       devices.PortACPIPM + devices.ACPIPMReset,
		ResetValue:      resetValue,
		SCI:             devices.IRQSCI,
		SleepTypeS5:     sleepTypeS5,
		RTCCentury:      devices.RTCCentury,
		ECAMBase:        uint64(boot.PCIeECAMStart),
		ECAMEndBus:      uint8(boot.PCIeECAMSize>>20 - 1),
		PCIMMIO32Base:   uint32(boot.PCIMMIO32Start),
		PCIMMIO32Size:   boot.PCIMMIO32Size,
		PCIMMIO64Base:   uint64(mmio64),
		PCIMMIO64Size:   mmio64Size,
		INTxGSI:         boot.PCIINTxGSI,
		COM1Port:        devices.PortCOM1,
		COM1IRQ:         devices.IRQCOM1,
		RTCPort:         devices.PortRTC,
		RTCIRQ:          devices.IRQRTC,
	}
}

// ACPITables returns the ACPI tables a guest of c gets, RSDP first, and
// where each goes; it needs no KVM (govmm -dump-acpi).
func ACPITables(c Config) ([]acpi.Table, error) {
	if c.CPUs < 1 {
		return nil, fmt.Errorf("%d vCPUs: give at least 1", c.CPUs)
	}
	return acpi.Build(acpiConfig(c.CPUs, c.MemSize))
}

// setupACPI writes the ACPI tables into guest RAM and adds the ACPI
// register block to the port bus, its SCI on the in-kernel irqchip.
func (m *Machine) setupACPI() error {
	tables, err := acpi.Build(acpiConfig(m.cfg.CPUs, m.cfg.MemSize))
	if err != nil {
		return err
	}
	for _, t := range tables {
		if m.cfg.restoring() {
			break // RAM holds the tables as the guest left them (FACS has its global lock)
		}
		if err := m.mem.WriteAt(t.Data, memory.GuestAddr(t.Addr)); err != nil {
			return fmt.Errorf("writing the ACPI %s table at %#x (%d bytes): %w (the tables need at least 1 MiB of RAM)", t.Name(), t.Addr, len(t.Data), err)
		}
	}
	m.acpiPM = devices.NewACPIPM(devices.ACPIPMConfig{
		SCI:         m.line(devices.IRQSCI),
		SleepTypeS5: sleepTypeS5,
		ResetValue:  resetValue,
		PowerOff:    func() { m.finish(vcpu.StopPowerOff, 0, false) },
		Reset:       m.reset,
	})
	return m.plat.io.Register(devices.PortACPIPM, devices.ACPIPMSize, "acpi pm", m.acpiPM)
}

// PowerButton presses the guest's ACPI power button: the guest's OS
// decides what follows (Linux sends KEY_POWER to user space; govmm's
// agent then powers off). It may be called from any goroutine while Run
// runs.
func (m *Machine) PowerButton() { m.acpiPM.PressPowerButton() }
