// Package pci is govmm's PCI bus 0: a host bridge at 00.0, configuration
// space through mechanism #1 (ports 0xCF8-0xCFF) and ECAM (PCI Express's
// memory-mapped configuration window), functions with BARs, capability
// lists, MSI-X and INTx, and a test device.
//
// A device is a Function built from a Config: its IDs, the BARs it wants
// (each with a devices.Device that sees offsets into the BAR), an INTx pin,
// and MSI-X vectors. The Bus places the BARs in the windows it is given,
// as firmware would, and registers each BAR's handler on govmm's port or
// MMIO bus whenever the guest has decoding on, removing it when the guest
// turns decoding off or moves the BAR. Interrupts go through the
// devices.Interrupts the Bus is given: INTx pins drive IOAPIC inputs
// (level-triggered, by the swizzle the machine passes in), MSI-X vectors
// become MSI messages.
//
// The specifications followed: PCI Local Bus 3.0 (header, BARs,
// capabilities, mechanism #1 in 3.2.2.3.2, MSI-X in 6.8), PCI Express
// Base 4.0 (ECAM, 7.2.2).
package pci
