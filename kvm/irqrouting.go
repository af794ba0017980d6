package kvm

import "fmt"

// GSI routing: KVM_SET_GSI_ROUTING replaces the VM's whole table, which
// says what raising each GSI (global system interrupt number, the number
// KVM_IRQ_LINE and KVM_IRQFD take) does: drive a pin of the in-kernel PIC
// or IOAPIC, or send an MSI message. One GSI may have several entries
// (GSIs 0-15 drive both a PIC pin and the IOAPIC pin by default).

// IRQRouteKind says what a GSI routing entry does (KVM_IRQ_ROUTING_*).
type IRQRouteKind uint32

const (
	IRQRouteIRQChip IRQRouteKind = 1 // KVM_IRQ_ROUTING_IRQCHIP: a pin of the PIC or IOAPIC
	IRQRouteMSI     IRQRouteKind = 2 // KVM_IRQ_ROUTING_MSI: an MSI message
)

// IRQRoute is one entry of the GSI routing table. For IRQRouteIRQChip,
// Chip (IRQChipPICMaster, IRQChipPICSlave or IRQChipIOAPIC) and Pin name
// the input; for IRQRouteMSI, Addr and Data are the message.
type IRQRoute struct {
	GSI  uint32
	Kind IRQRouteKind
	Chip uint32
	Pin  uint32
	Addr uint64
	Data uint32
}

func (r IRQRoute) String() string {
	if r.Kind == IRQRouteMSI {
		return fmt.Sprintf("gsi %d: msi addr %#x data %#x", r.GSI, r.Addr, r.Data)
	}
	return fmt.Sprintf("gsi %d: irqchip %d pin %d", r.GSI, r.Chip, r.Pin)
}

// IOAPICPins is how many inputs KVM's in-kernel IOAPIC has
// (KVM_IOAPIC_NUM_PINS).
const IOAPICPins = 24

// DefaultIRQRoutes is the table KVM_CREATE_IRQCHIP sets up on x86
// (arch/x86/kvm/irq_comm.c, default_routing): GSI 0-7 drive the master
// PIC's pin n and IOAPIC pin n, 8-15 the slave PIC's pin n-8 and IOAPIC pin
// n, 16-23 only IOAPIC pin n. A VMM that adds MSI routes must pass these
// too, since KVM_SET_GSI_ROUTING replaces the whole table.
func DefaultIRQRoutes() []IRQRoute {
	var out []IRQRoute
	for gsi := uint32(0); gsi < IOAPICPins; gsi++ {
		out = append(out, IRQRoute{GSI: gsi, Kind: IRQRouteIRQChip, Chip: IRQChipIOAPIC, Pin: gsi})
		switch {
		case gsi < 8:
			out = append(out, IRQRoute{GSI: gsi, Kind: IRQRouteIRQChip, Chip: IRQChipPICMaster, Pin: gsi})
		case gsi < 16:
			out = append(out, IRQRoute{GSI: gsi, Kind: IRQRouteIRQChip, Chip: IRQChipPICSlave, Pin: gsi - 8})
		}
	}
	return out
}

// irqRoutingIRQChip mirrors struct kvm_irq_routing_irqchip.
type irqRoutingIRQChip struct {
	IRQChip uint32
	Pin     uint32
}

// irqRoutingMSI mirrors struct kvm_irq_routing_msi (devid, in a union with
// pad, is 0: KVM_MSI_VALID_DEVID is not used on x86).
type irqRoutingMSI struct {
	AddressLo uint32
	AddressHi uint32
	Data      uint32
	DevID     uint32
}

// irqRoutingEntry mirrors struct kvm_irq_routing_entry; U is the 32-byte
// union of which irqRoutingIRQChip or irqRoutingMSI is the first part.
// The union holds u64 fields (the s390 adapter's), so the entry is
// 8-byte aligned.
type irqRoutingEntry struct {
	GSI   uint32
	Type  uint32
	Flags uint32
	_     uint32
	U     [4]uint64
}

// irqRoutingHeader mirrors struct kvm_irq_routing without its flexible
// array of entries.
type irqRoutingHeader struct {
	NR    uint32
	Flags uint32
}

// irqRoutingHeadWords and irqRoutingEntryWords are the header's and one
// entry's sizes in u64 words.
const (
	irqRoutingHeadWords  = 1 // sizeof(struct kvm_irq_routing) / 8
	irqRoutingEntryWords = 6 // sizeof(struct kvm_irq_routing_entry) / 8
)

// newIRQRouting returns a struct kvm_irq_routing holding routes, built in
// u64 words (the entries' alignment): each word holds two u32 fields, the
// first in the low half (x86 is little-endian).
func newIRQRouting(routes []IRQRoute) []uint64 {
	buf := make([]uint64, irqRoutingHeadWords+irqRoutingEntryWords*len(routes))
	buf[0] = uint64(len(routes)) // nr; flags 0
	pair := func(lo, hi uint32) uint64 { return uint64(lo) | uint64(hi)<<32 }
	for i, r := range routes {
		w := buf[irqRoutingHeadWords+irqRoutingEntryWords*i:]
		w[0] = pair(r.GSI, uint32(r.Kind))
		w[1] = 0 // flags, pad
		switch r.Kind {
		case IRQRouteMSI:
			w[2] = r.Addr // address_lo, address_hi
			w[3] = pair(r.Data, 0)
		default:
			w[2] = pair(r.Chip, r.Pin)
		}
	}
	return buf
}

// MSI address and data fields (Intel SDM vol. 3, 11.11: "Message Signalled
// Interrupts"), as a device writes them.
const (
	// MSIAddrBase is the fixed top of an MSI address: 0xFEEx_xxxx.
	MSIAddrBase = 0xFEE0_0000
	// MSIAddrDestShift is where the destination APIC ID sits in the address.
	MSIAddrDestShift = 12
	// MSIDataVectorMask is the interrupt vector in the data word.
	MSIDataVectorMask = 0xFF
)

// msi mirrors struct kvm_msi, the argument of KVM_SIGNAL_MSI.
type msi struct {
	AddressLo uint32
	AddressHi uint32
	Data      uint32
	Flags     uint32
	DevID     uint32
	_         [12]uint8
}
