package boot

import "github.com/govmm/govmm/memory"

// Guest-physical layout. Every address the guest sees at power-on is named
// here; nothing else in govmm spells one as a number. layout_test.go checks
// that no two of these regions overlap.

// Low memory: the first MiB, where the VMM puts the boot structures.
const (
	// RealModeIVT is the real-mode interrupt vector table (0x0-0x400) followed
	// by the BIOS data area (0x400-0x500). Nothing of ours goes there, so a
	// kernel that peeks at the BDA reads zeros.
	RealModeIVT memory.GuestAddr = 0x0
	// RealModeIVTEnd is the first byte past the BIOS data area.
	RealModeIVTEnd memory.GuestAddr = 0x500

	// GDTAddr is where the boot GDT goes (see cpu.go for its entries).
	GDTAddr memory.GuestAddr = 0x500
	// GDTEntries is the number of 8-byte slots in the boot GDT: null, unused,
	// __BOOT_CS, __BOOT_DS and a 16-byte TSS descriptor (two slots).
	GDTEntries = 6
	// GDTSize is the byte size of the boot GDT.
	GDTSize = GDTEntries * 8

	// BootTSSAddr is the (all-zero) task-state segment that TR points at
	// until the kernel loads its own; KVM wants a usable TR at entry.
	BootTSSAddr memory.GuestAddr = 0x600
	// BootTSSSize is the size of a 64-bit TSS (Intel SDM vol. 3, 8.7).
	BootTSSSize = 0x68

	// ZeroPageAddr is where struct boot_params (the "zero page") goes.
	ZeroPageAddr memory.GuestAddr = 0x7000
	// ZeroPageSize is the size of struct boot_params.
	ZeroPageSize = 0x1000

	// StackStart is the bottom of the small stack the kernel gets at entry.
	StackStart memory.GuestAddr = 0x8000
	// StackTop is the initial RSP: 16 bytes under the stack page's end,
	// keeping RSP 16-byte aligned.
	StackTop memory.GuestAddr = 0x8ff0
	// StackEnd is the first byte past the stack page.
	StackEnd memory.GuestAddr = 0x9000

	// PML4Addr is the top-level page table (CR3 points here).
	PML4Addr memory.GuestAddr = 0x9000
	// PDPTAddr is the page-directory-pointer table, entry 0 of the PML4.
	PDPTAddr memory.GuestAddr = 0xa000
	// PDAddr is the first of PDCount page directories (2 MiB pages).
	PDAddr memory.GuestAddr = 0xb000
	// PDCount page directories of 512 2-MiB entries identity-map 4 GiB.
	PDCount = 4
	// PageSize is the size of one 4 KiB page (and of one page table).
	PageSize = 0x1000
	// PageTablesEnd is the first byte past the last page directory.
	PageTablesEnd = PDAddr + PDCount*PageSize
	// IdentityMapSize is how much of the address space the boot page tables
	// identity-map: PDCount × 512 entries × 2 MiB.
	IdentityMapSize uint64 = PDCount * 512 * (2 << 20)

	// CmdlineAddr is where the kernel command line (NUL-terminated) goes.
	CmdlineAddr memory.GuestAddr = 0x20000
	// CmdlineMax is the most bytes, NUL included, the command line area holds.
	CmdlineMax = 0x10000

	// EBDAStart is the start of the extended BIOS data area; from here to
	// HighMemStart is reserved in the e820 map, not RAM.
	EBDAStart memory.GuestAddr = 0x9fc00
	// LegacyHoleStart is the start of the VGA window and option/BIOS ROMs.
	LegacyHoleStart memory.GuestAddr = 0xa0000
	// BIOSAreaStart is where a PC's system BIOS ROM would be: 0xE0000 to
	// HighMemStart. It holds the ACPI tables, inside the legacy hole, which
	// the e820 map reserves, so the guest keeps them.
	BIOSAreaStart memory.GuestAddr = 0xE0000
	// RSDPAddr is the ACPI RSDP: the first 16-byte boundary of the BIOS
	// area, where an OS that scans 0xE0000-0xFFFFF for "RSD PTR " finds
	// it; the zero page's acpi_rsdp_addr names it too.
	RSDPAddr memory.GuestAddr = BIOSAreaStart
	// RSDPSize is the ACPI 2.0 RSDP's 36 bytes, rounded up to 64.
	RSDPSize = 0x40
	// ACPITablesAddr is where the other ACPI tables (XSDT, FADT, FACS,
	// DSDT, MADT, MCFG) go, one after another, up to HighMemStart.
	ACPITablesAddr = RSDPAddr + RSDPSize
	// ACPITablesSize is the room for them: the rest of the BIOS area
	// (about 128 KiB; 255 vCPUs need under 5 KiB).
	ACPITablesSize = uint64(HighMemStart - ACPITablesAddr)
	// HighMemStart is 1 MiB, the end of the legacy hole.
	HighMemStart memory.GuestAddr = 0x10_0000

	// KernelLoad is where the protected-mode kernel is loaded by default
	// (1 MiB, the boot protocol's traditional address).
	KernelLoad memory.GuestAddr = HighMemStart
)

// The 32-bit MMIO hole below 4 GiB: no RAM here, only devices.
const (
	// MMIOHoleStart is the first address of the MMIO hole (3 GiB).
	MMIOHoleStart = memory.HoleStart
	// MMIOHoleEnd is the first address past the hole (4 GiB); RAM resumes.
	MMIOHoleEnd = memory.HoleEnd

	// PCIMMIO32Start is the 32-bit PCI BAR window.
	PCIMMIO32Start memory.GuestAddr = 0xC000_0000
	// PCIMMIO32Size is the size of the 32-bit PCI BAR window (256 MiB).
	PCIMMIO32Size = 0x1000_0000

	// PlatformMMIOStart is the window for govmm's own MMIO devices.
	PlatformMMIOStart memory.GuestAddr = 0xD000_0000
	// PlatformMMIOSize is the size of the platform MMIO window (1 MiB).
	PlatformMMIOSize = 0x10_0000

	// SerialMMIO is an MMIO alias of COM1 (register offsets as the 16550's
	// ports), so guest ring-3 code, which cannot do port I/O here, can print.
	SerialMMIO memory.GuestAddr = 0xD000_0000
	// SerialMMIOSize is one page.
	SerialMMIOSize = 0x1000
	// DebugExitMMIO is an MMIO alias of the debug-exit device.
	DebugExitMMIO memory.GuestAddr = 0xD000_1000
	// DebugExitMMIOSize is one page.
	DebugExitMMIOSize = 0x1000

	// PCIeECAMStart is the PCI Express enhanced configuration space
	// (1 MiB per bus, 256 buses). It must be e820-reserved for Linux to use it.
	PCIeECAMStart memory.GuestAddr = 0xE000_0000
	// PCIeECAMSize is 256 MiB.
	PCIeECAMSize = 0x1000_0000

	// IOAPICAddr is the I/O APIC's register page.
	IOAPICAddr memory.GuestAddr = 0xFEC0_0000
	// IOAPICSize is one page.
	IOAPICSize = 0x1000
	// LAPICAddr is the local APIC's register page.
	LAPICAddr memory.GuestAddr = 0xFEE0_0000
	// LAPICSize is one page.
	LAPICSize = 0x1000

	// KVMIdentityMapAddr is the page given to KVM_SET_IDENTITY_MAP_ADDR.
	KVMIdentityMapAddr memory.GuestAddr = 0xFEFF_C000
	// KVMIdentityMapSize is one page.
	KVMIdentityMapSize = 0x1000
	// KVMTSSAddr is given to KVM_SET_TSS_ADDR; KVM uses three pages there.
	KVMTSSAddr memory.GuestAddr = 0xFEFF_D000
	// KVMTSSSize is three pages.
	KVMTSSSize = 0x3000
)

// PCI: the 64-bit BAR window and how INTx pins reach the I/O APIC. The
// ACPI tables (the DSDT's _CRS and _PRT) declare exactly these, and the PCI
// model places BARs and raises lines by them.
const (
	// PCIMMIO64Size is the size of the 64-bit PCI BAR window (64 GiB).
	PCIMMIO64Size uint64 = 64 << 30
	// PCIMMIO64Align is the window's alignment (1 GiB).
	PCIMMIO64Align uint64 = 1 << 30

	// PCIINTxGSIBase is the first I/O APIC input PCI INTx lines use: device
	// slot S's pin P (INTA=0 .. INTD=3) is wired, level-triggered and
	// active-low, to GSI PCIINTxGSIBase + (S+P)%PCIINTxLines, the swizzle
	// of the PCI-to-PCI bridge specification.
	PCIINTxGSIBase = 16
	// PCIINTxLines is how many I/O APIC inputs the INTx pins share.
	PCIINTxLines = 4

	// PCIIOPortStart is the first of the I/O ports PCI I/O BARs are placed
	// in (ports, not addresses, but the same contract: the DSDT's _CRS
	// declares this window). Below it are the legacy devices' ports and
	// 0xCF8-0xCFF, configuration mechanism #1.
	PCIIOPortStart = 0xC000
	// PCIIOPortSize runs the window to the end of the port space.
	PCIIOPortSize = 0x10000 - PCIIOPortStart
)

// PCIMMIO64 returns the 64-bit PCI BAR window for a guest whose RAM ends
// (exclusive) at ramEnd: the first PCIMMIO64Align boundary at or above both
// ramEnd and 4 GiB, PCIMMIO64Size bytes long.
func PCIMMIO64(ramEnd memory.GuestAddr) (start memory.GuestAddr, size uint64) {
	base := max(uint64(ramEnd), uint64(MMIOHoleEnd))
	return memory.GuestAddr((base + PCIMMIO64Align - 1) &^ (PCIMMIO64Align - 1)), PCIMMIO64Size
}

// PCIINTxGSI is the I/O APIC input that device slot's INTx pin (0-3 for
// INTA-INTD) raises.
func PCIINTxGSI(slot, pin int) int {
	return PCIINTxGSIBase + (slot+pin)%PCIINTxLines
}

// Selectors of the boot GDT, the values the 64-bit boot protocol requires
// (boot.rst, "64-bit Boot Protocol").
const (
	// BootCS is __BOOT_CS: GDT entry 2, the flat 64-bit code segment.
	BootCS uint16 = 0x10
	// BootDS is __BOOT_DS: GDT entry 3, the flat data segment.
	BootDS uint16 = 0x18
	// BootTSS is the selector of the TSS descriptor, GDT entries 4 and 5.
	BootTSS uint16 = 0x20
)
