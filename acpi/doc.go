// Package acpi builds the ACPI tables a guest reads at boot, as bytes: the
// RSDP, the XSDT, the FADT with its FACS, the MADT, the MCFG and a DSDT of
// real AML made by a small encoder (aml.go, resource.go). The layout
// follows the ACPI Specification, version 6.5, chapter 5 ("ACPI Software
// Programming Model"), section 6.4 ("Resource Data Types for ACPI") and
// chapter 20 ("ACPI Machine Language (AML) Specification").
//
// The package knows nothing of KVM or of govmm's devices: Build takes
// every address, port and interrupt in a Config, and the machine package
// fills that from boot/layout.go and the devices. The tests check every
// table byte by byte and, where ACPICA's tools are installed (Debian's
// acpica-tools), have iasl disassemble each table and acpiexec evaluate
// the DSDT's _CRS and _PRT.
package acpi
