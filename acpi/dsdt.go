package acpi

import "fmt"

// dsdtRevision 2 makes AML integers 64 bits wide (5.2.11.1), which the
// 64-bit PCI window's QWordMemory needs.
const dsdtRevision = 2

// PCI configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): the
// address register at 0xCF8 and the data register at 0xCFC, 8 ports.
const (
	pciConfigPort     = 0xCF8
	pciConfigPortSize = 8
)

// The PC's 8042 keyboard controller: its data and command/status ports
// and the keyboard's ISA IRQ, fixed on every PC.
const (
	i8042DataPort    = 0x60
	i8042CommandPort = 0x64
	i8042KbdIRQ      = 1
)

// PCISlots is how many device slots bus 0 has (a PCI bus's 32 devices).
const PCISlots = 32

// dsdt builds the Differentiated System Description Table: its AML
// declares
//
//	\_SB.PCI0  the PCI Express host bridge (PNP0A08, compatible with
//	           PNP0A03): bus numbers, the configuration ports, the I/O
//	           windows around them and both memory windows in _CRS, and a
//	           _PRT that routes every slot's INTA-INTD to a GSI
//	\_SB.COM1  the 16550 (PNP0501) with its ports and ISA IRQ
//	\_SB.RTC   the CMOS clock (PNP0B00) with its ports and ISA IRQ
//	\_SB.KBD   the 8042's keyboard (PNP0303): the data port, then the
//	           command port, then IRQ 1, in the order Linux's i8042
//	           driver reads them; with no PS/2 mouse (PNP0F13) declared
//	           beside it, Linux leaves the mouse port alone instead of
//	           probing it (a second of timeouts)
//	\_SB.MRES  motherboard resources (PNP0C02): the ECAM window and the
//	           ACPI register ports, so the OS leaves them alone
//	\_S5       the sleep type value that powers off
//
// The power button is the FADT's fixed-feature button, so it has no
// device here.
func dsdt(c *Config) ([]byte, error) {
	if c.INTxGSI == nil {
		return nil, fmt.Errorf("no INTx routing: Config.INTxGSI is nil")
	}
	prt := make([][]byte, 0, PCISlots*4)
	for slot := 0; slot < PCISlots; slot++ {
		for pin := 0; pin < 4; pin++ {
			// Address: device in the high word, 0xFFFF for any function;
			// Source 0 means the last element is a GSI, level-triggered
			// and active-low (6.2.13).
			prt = append(prt, Package(
				Integer(uint64(slot)<<16|0xFFFF),
				Integer(uint64(pin)),
				Integer(0),
				Integer(uint64(c.INTxGSI(slot, pin))),
			))
		}
	}
	// Package() holds at most 255 elements; 128 fit.
	pci := Device("PCI0",
		Name("_HID", mustEISAID("PNP0A08")),
		Name("_CID", mustEISAID("PNP0A03")),
		Name("_SEG", Integer(0)),
		Name("_BBN", Integer(0)),
		Name("_UID", Integer(0)),
		Name("_CRS", ResourceTemplate(
			WordBusNumber(0, uint16(c.ECAMEndBus)),
			IO(pciConfigPort, pciConfigPortSize),
			WordIO(0, pciConfigPort-1),
			WordIO(pciConfigPort+pciConfigPortSize, 0xFFFF),
			DWordMemory(c.PCIMMIO32Base, c.PCIMMIO32Size),
			QWordMemory(c.PCIMMIO64Base, c.PCIMMIO64Size),
		)),
		Name("_PRT", Package(prt...)),
	)
	com1 := Device("COM1",
		Name("_HID", mustEISAID("PNP0501")),
		Name("_UID", Integer(1)),
		Name("_CRS", ResourceTemplate(IO(c.COM1Port, 8), IRQNoFlags(c.COM1IRQ))),
	)
	rtc := Device("RTC",
		Name("_HID", mustEISAID("PNP0B00")),
		Name("_CRS", ResourceTemplate(IO(c.RTCPort, 2), IRQNoFlags(c.RTCIRQ))),
	)
	kbd := Device("KBD",
		Name("_HID", mustEISAID("PNP0303")),
		Name("_CRS", ResourceTemplate(IO(i8042DataPort, 1), IO(i8042CommandPort, 1), IRQNoFlags(i8042KbdIRQ))),
	)
	res := Device("MRES",
		Name("_HID", mustEISAID("PNP0C02")),
		Name("_UID", Integer(0)),
		Name("_CRS", ResourceTemplate(
			Memory32Fixed(uint32(c.ECAMBase), uint32(c.ECAMSize())),
			IO(c.PM1aEventPort, PM1EventLen),
			IO(c.PM1aControlPort, PM1ControlLen),
			IO(c.ResetPort, 1),
		)),
	)
	// \_S5: SLP_TYPa, SLP_TYPb and two reserved values (7.4.2).
	s5 := Name(`\_S5`, Package(Integer(uint64(c.SleepTypeS5)), Integer(uint64(c.SleepTypeS5)), Integer(0), Integer(0)))
	b := sdt("DSDT", dsdtRevision)
	b = append(b, Scope(`\_SB`, pci, com1, rtc, kbd, res)...)
	b = append(b, s5...)
	return finish(b), nil
}
