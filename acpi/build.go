package acpi

import (
	"fmt"
)

// Config is everything the tables describe. The machine package fills it
// from boot/layout.go and the devices; nothing here has a default.
type Config struct {
	// RSDPAddr is where the RSDP goes: in 0xE0000-0xFFFFF, 16-byte
	// aligned, so that an OS that scans the BIOS area finds it too.
	RSDPAddr uint64
	// TablesAddr and TablesSize are the guest memory the other tables go
	// in, one after another.
	TablesAddr, TablesSize uint64

	// APICIDs are the vCPUs' local APIC IDs, boot vCPU first: one MADT
	// processor each, whose ACPI processor UID is its index.
	APICIDs    []uint32
	LAPICAddr  uint32
	IOAPICAddr uint32
	IOAPICID   uint8
	// Overrides are the MADT's interrupt source overrides: how ISA IRQs
	// differ from "IRQ n is GSI n, edge, active-high".
	Overrides []Override

	// The ACPI registers: the PM1a event block (status and enable, 2
	// bytes each), the PM1a control block (2 bytes), the reset register
	// (1 byte, ResetValue resets), all in I/O space, and the SCI's ISA
	// IRQ.
	PM1aEventPort, PM1aControlPort, ResetPort uint16
	ResetValue                                uint8
	SCI                                       uint8
	// SleepTypeS5 is the SLP_TYP value that, written to PM1a_CNT with
	// SLP_EN, powers the machine off (the DSDT's \_S5).
	SleepTypeS5 uint8
	// RTCCentury is the CMOS index of the century byte (the FADT's
	// CENTURY), 0 for none.
	RTCCentury uint8

	// PCI: the ECAM window for buses 0..ECAMEndBus (1 MiB each), the 32-
	// and 64-bit memory windows, and the GSI each slot's INTx pin (0-3
	// for INTA-INTD) raises.
	ECAMBase                     uint64
	ECAMEndBus                   uint8
	PCIMMIO32Base, PCIMMIO32Size uint32
	PCIMMIO64Base, PCIMMIO64Size uint64
	INTxGSI                      func(slot, pin int) int

	// The legacy devices the DSDT declares: COM1 (8 ports) and the RTC
	// (2 ports), with their ISA IRQs.
	COM1Port uint16
	COM1IRQ  int
	RTCPort  uint16
	RTCIRQ   int
}

// ECAMSize is the size of the ECAM window: 1 MiB per bus.
func (c *Config) ECAMSize() uint64 { return (uint64(c.ECAMEndBus) + 1) << 20 }

// tableAlign keeps every table 8-byte aligned.
const tableAlign = 8

// Build makes the tables: the RSDP at c.RSDPAddr, then from c.TablesAddr
// the FACS, DSDT, FADT, MADT, MCFG and XSDT. The RSDP comes first in the
// result.
func Build(c *Config) ([]Table, error) {
	if c.RSDPAddr%16 != 0 {
		return nil, fmt.Errorf("RSDP address %#x is not 16-byte aligned: an OS scanning for it would miss it", c.RSDPAddr)
	}
	if len(c.APICIDs) == 0 {
		return nil, fmt.Errorf("no vCPUs: the MADT needs at least one APIC ID")
	}
	if len(c.APICIDs) > 256 {
		return nil, fmt.Errorf("%d vCPUs: the MADT's processor UIDs are one byte", len(c.APICIDs))
	}
	d, err := dsdt(c)
	if err != nil {
		return nil, err
	}
	m, err := madt(c)
	if err != nil {
		return nil, err
	}
	var out []Table
	next := c.TablesAddr
	place := func(sig string, data []byte, align uint64) uint64 {
		next = (next + align - 1) &^ (align - 1)
		addr := next
		out = append(out, Table{Signature: sig, Addr: addr, Data: data})
		next += uint64(len(data))
		return addr
	}
	facsAddr := place("FACS", facs(), facsAlign)
	dsdtAddr := place("DSDT", d, tableAlign)
	fadtAddr := place("FACP", fadt(c, facsAddr, dsdtAddr), tableAlign)
	madtAddr := place("APIC", m, tableAlign)
	mcfgAddr := place("MCFG", mcfg(c), tableAlign)
	xsdtAddr := place("XSDT", xsdt([]uint64{fadtAddr, madtAddr, mcfgAddr}), tableAlign)
	if next > c.TablesAddr+c.TablesSize {
		return nil, fmt.Errorf("the ACPI tables take %d bytes, more than the %d at %#x", next-c.TablesAddr, c.TablesSize, c.TablesAddr)
	}
	if c.RSDPAddr+rsdpSize > c.TablesAddr && c.TablesAddr+c.TablesSize > c.RSDPAddr {
		return nil, fmt.Errorf("the RSDP at %#x overlaps the tables at [%#x, %#x)", c.RSDPAddr, c.TablesAddr, c.TablesAddr+c.TablesSize)
	}
	return append([]Table{{Signature: rsdpSignature, Addr: c.RSDPAddr, Data: rsdp(xsdtAddr)}}, out...), nil
}
