package acpi

import (
	"encoding/binary"
	"fmt"
)

// RSDP: the Root System Description Pointer (5.2.5.3, Table 5.3), ACPI
// 2.0 form, 36 bytes. Linux finds it through the zero page's
// acpi_rsdp_addr, or by scanning 0xE0000-0xFFFFF on 16-byte boundaries
// for the signature.
const (
	rsdpSignature   = "RSD PTR "
	rsdpSize        = 36
	rsdpV1Size      = 20 // what the first checksum covers
	rsdpOffChecksum = 8
	rsdpOffOEMID    = 9
	rsdpOffRevision = 15
	rsdpOffLength   = 20
	rsdpOffXSDT     = 24
	rsdpOffExtCheck = 32
	rsdpRevision    = 2 // ACPI 2.0 and later: use the XSDT
)

// rsdp points at the XSDT; the 32-bit RSDT address stays 0, so an OS
// uses the XSDT.
func rsdp(xsdt uint64) []byte {
	b := make([]byte, rsdpSize)
	copy(b, rsdpSignature)
	copy(b[rsdpOffOEMID:], OEMID)
	b[rsdpOffRevision] = rsdpRevision
	putU32(b, rsdpOffLength, rsdpSize)
	putU64(b, rsdpOffXSDT, xsdt)
	b[rsdpOffChecksum] = checksum(b[:rsdpV1Size])
	b[rsdpOffExtCheck] = checksum(b)
	return b
}

// xsdt lists the 64-bit addresses of the other tables (5.2.8).
func xsdt(entries []uint64) []byte {
	b := sdt("XSDT", 1)
	for _, a := range entries {
		b = binary.LittleEndian.AppendUint64(b, a)
	}
	return finish(b)
}

// FACS: the Firmware ACPI Control Structure (5.2.10, Table 5.14), 64
// bytes, 64-byte aligned, no checksum. A full (not hardware-reduced) ACPI
// platform must have one; ours only says there is no global lock owner
// and no waking vector (govmm does not offer S3).
const (
	facsSize       = 64
	facsAlign      = 64
	facsOffLength  = 4
	facsOffVersion = 32
	facsVersion    = 2
)

func facs() []byte {
	b := make([]byte, facsSize)
	copy(b, "FACS")
	putU32(b, facsOffLength, facsSize)
	b[facsOffVersion] = facsVersion
	return b
}

// FADT: the Fixed ACPI Description Table (5.2.9, Table 5.9), revision 6,
// 276 bytes. Offsets of the fields govmm fills.
const (
	fadtSize             = 276
	fadtRevision         = 6
	fadtMinorVersion     = 5 // ACPI 6.5
	fadtOffFirmwareCtrl  = 36
	fadtOffDSDT          = 40
	fadtOffSCIInt        = 46
	fadtOffPM1aEvtBlk    = 56
	fadtOffPM1aCntBlk    = 64
	fadtOffPM1EvtLen     = 88
	fadtOffPM1CntLen     = 89
	fadtOffPLvl2Lat      = 96
	fadtOffPLvl3Lat      = 98
	fadtOffCentury       = 108
	fadtOffIAPCBootArch  = 109
	fadtOffFlags         = 112
	fadtOffResetReg      = 116
	fadtOffResetValue    = 128
	fadtOffMinorVersion  = 131
	fadtOffXFirmwareCtrl = 132
	fadtOffXDSDT         = 140
	fadtOffXPM1aEvtBlk   = 148
	fadtOffXPM1aCntBlk   = 172
	fadtOffHypervisorID  = 268
)

// FADT Flags (Table 5.10) and IA-PC boot architecture flags (Table 5.11).
const (
	fadtWBINVD      = 1 << 0  // WBINVD works: required on IA-PC
	fadtProcC1      = 1 << 2  // C1 (HLT) works on every processor
	fadtSleepButton = 1 << 5  // the sleep button, if any, is a control method: there is none
	fadtFixRTC      = 1 << 6  // RTC wake status is not in the fixed registers
	fadtResetRegSup = 1 << 10 // RESET_REG works

	bootArchLegacyDevices = 1 << 0 // ISA devices the OS cannot enumerate (serial, RTC) may be there
	bootArch8042          = 1 << 1 // an 8042 keyboard controller is there
	bootArchNoVGA         = 1 << 2 // no VGA: do not probe it
)

// noC2C3 is a P_LVL2_LAT and P_LVL3_LAT above 100 and 1000 µs: C2 and C3
// are not supported.
const noC2C3 = 0x0FFF

// PM1 register block lengths in bytes: the event block is a status and an
// enable register of 2 bytes each, the control block one of 2.
const (
	PM1EventLen   = 4
	PM1ControlLen = 2
)

// fadt builds the FADT of a full ACPI platform with PM1a event and
// control blocks in I/O space, the SCI on c.SCI, a fixed-feature power
// button (its Flags bit PWR_BUTTON clear) and a reset register.
func fadt(c *Config, facsAddr, dsdtAddr uint64) []byte {
	b := append(sdt("FACP", fadtRevision), make([]byte, fadtSize-headerSize)...)
	// A table below 4 GiB has its 32-bit address too; ACPICA accepts both
	// when they agree, and old readers only know the 32-bit one.
	putU32(b, fadtOffFirmwareCtrl, uint32(facsAddr))
	putU32(b, fadtOffDSDT, uint32(dsdtAddr))
	putU16(b, fadtOffSCIInt, uint16(c.SCI))
	putU32(b, fadtOffPM1aEvtBlk, uint32(c.PM1aEventPort))
	putU32(b, fadtOffPM1aCntBlk, uint32(c.PM1aControlPort))
	b[fadtOffPM1EvtLen] = PM1EventLen
	b[fadtOffPM1CntLen] = PM1ControlLen
	putU16(b, fadtOffPLvl2Lat, noC2C3)
	putU16(b, fadtOffPLvl3Lat, noC2C3)
	b[fadtOffCentury] = c.RTCCentury
	putU16(b, fadtOffIAPCBootArch, bootArchLegacyDevices|bootArch8042|bootArchNoVGA)
	putU32(b, fadtOffFlags, fadtWBINVD|fadtProcC1|fadtSleepButton|fadtFixRTC|fadtResetRegSup)
	copy(b[fadtOffResetReg:], gas(gasSystemIO, 8, accessByte, uint64(c.ResetPort)))
	b[fadtOffResetValue] = c.ResetValue
	b[fadtOffMinorVersion] = fadtMinorVersion
	putU64(b, fadtOffXFirmwareCtrl, facsAddr)
	putU64(b, fadtOffXDSDT, dsdtAddr)
	copy(b[fadtOffXPM1aEvtBlk:], gas(gasSystemIO, PM1EventLen*8, accessWord, uint64(c.PM1aEventPort)))
	copy(b[fadtOffXPM1aCntBlk:], gas(gasSystemIO, PM1ControlLen*8, accessWord, uint64(c.PM1aControlPort)))
	copy(b[fadtOffHypervisorID:], "GOVMM\x00\x00\x00")
	return finish(b)
}

// MADT: the Multiple APIC Description Table (5.2.12), revision 5.
const (
	madtRevision    = 5
	madtOffLAPIC    = 36 // Local Interrupt Controller Address
	madtOffFlags    = 40
	madtPCATCompat  = 1 << 0 // there are also dual 8259s (KVM's PIC)
	madtLAPIC       = 0      // Processor Local APIC structure (5.2.12.2), 8 bytes
	madtIOAPIC      = 1      // I/O APIC structure (5.2.12.3), 12 bytes
	madtISO         = 2      // Interrupt Source Override (5.2.12.5), 10 bytes
	madtLAPICNMI    = 4      // Local APIC NMI structure (5.2.12.7), 6 bytes
	lapicEnabled    = 1 << 0
	allProcessors   = 0xFF // the ACPI processor UID that names every processor
	maxXAPICID      = 254  // 255 is the broadcast ID: higher IDs need x2APIC structures
	madtHeaderBytes = 44
)

// MPS INTI flags of an interrupt source override or NMI (Table 5.26).
const (
	PolarityHigh uint16 = 1 << 0
	PolarityLow  uint16 = 3 << 0
	TriggerEdge  uint16 = 1 << 2
	TriggerLevel uint16 = 3 << 2
)

// Override says that ISA interrupt Source reaches the I/O APIC at GSI with
// the given polarity and trigger mode (an Interrupt Source Override).
type Override struct {
	Source uint8
	GSI    uint32
	Flags  uint16 // PolarityHigh|TriggerEdge, PolarityLow|TriggerLevel, ...
}

func madt(c *Config) ([]byte, error) {
	b := append(sdt("APIC", madtRevision), make([]byte, madtHeaderBytes-headerSize)...)
	putU32(b, madtOffLAPIC, c.LAPICAddr)
	putU32(b, madtOffFlags, madtPCATCompat)
	for uid, id := range c.APICIDs {
		if id > maxXAPICID {
			return nil, fmt.Errorf("vCPU %d has APIC ID %d, above %d: the MADT would need x2APIC entries, which govmm does not write", uid, id, maxXAPICID)
		}
		b = append(b, madtLAPIC, 8, byte(uid), byte(id))
		b = binary.LittleEndian.AppendUint32(b, lapicEnabled)
	}
	b = append(b, madtIOAPIC, 12, c.IOAPICID, 0)
	b = binary.LittleEndian.AppendUint32(b, c.IOAPICAddr)
	b = binary.LittleEndian.AppendUint32(b, 0) // its first input is GSI 0
	for _, o := range c.Overrides {
		b = append(b, madtISO, 10, 0, o.Source) // bus 0: ISA
		b = binary.LittleEndian.AppendUint32(b, o.GSI)
		b = binary.LittleEndian.AppendUint16(b, o.Flags)
	}
	// LINT1 of every local APIC is the NMI input, as on a PC.
	b = append(b, madtLAPICNMI, 6, allProcessors)
	b = binary.LittleEndian.AppendUint16(b, PolarityHigh|TriggerEdge)
	b = append(b, 1)
	return finish(b), nil
}

// MCFG: the PCI Express memory-mapped configuration space table (PCI
// Firmware Specification 3.2, 4.1.2): after the header, 8 reserved bytes
// and one 16-byte allocation per segment.
func mcfg(c *Config) []byte {
	b := append(sdt("MCFG", 1), make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint64(b, c.ECAMBase)
	b = binary.LittleEndian.AppendUint16(b, 0) // PCI segment group 0
	b = append(b, 0, c.ECAMEndBus, 0, 0, 0, 0)
	return finish(b)
}
