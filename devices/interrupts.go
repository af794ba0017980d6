package devices

import "errors"

// Interrupts is the interrupt plumbing a device is given: wires into the
// interrupt controller, message-signalled vectors, and doorbells. A device
// holds one of these and never the VM; the machine implements it on KVM
// (KVM_IRQ_LINE, GSI routes with irqfds or KVM_SIGNAL_MSI, ioeventfds) and
// a test with a recorder.
type Interrupts interface {
	// Line is the interrupt controller's input gsi (PIC and IOAPIC pins
	// 0-15, IOAPIC pins 16-23). An edge-triggered device pulses it,
	// SetLevel(true) then SetLevel(false); a level-triggered one holds it
	// high until the guest acknowledges the device.
	Line(gsi uint32) IRQLine
	// NewMSIVector returns a vector that sends one MSI message; the caller
	// closes it when the device goes away.
	NewMSIVector() (MSIVector, error)
	// Doorbell arranges for ring to be called, on a goroutine of its own,
	// after the guest writes size bytes at addr in space, without the
	// write leaving the kernel (an ioeventfd). Writes that arrive before
	// ring runs may be coalesced into one call. It returns
	// ErrNoDoorbells where the host cannot: then the write reaches the
	// device through the bus as any other, and the device must handle it
	// there too.
	Doorbell(space Space, addr uint64, size int, ring func()) (Doorbell, error)
}

// MSIMessage is a message-signalled interrupt as a device is told to send
// it: Data written to Addr (PCI Local Bus 3.0, 6.8; on x86 the address
// names the destination local APIC and the data the vector).
type MSIMessage struct {
	Addr uint64
	Data uint32
}

// MSIVector is one message-signalled interrupt source, such as an MSI-X
// table entry.
type MSIVector interface {
	// SetMessage makes m the message Trigger sends. A device calls it when
	// the guest has changed the message and unmasked the vector.
	SetMessage(m MSIMessage) error
	// Trigger sends the message last set. It may be called from any
	// goroutine and does not block.
	Trigger() error
	// Close releases the vector.
	Close() error
}

// Doorbell is a registered doorbell; Close unregisters it and waits until
// its ring function is no longer running.
type Doorbell interface {
	Close() error
}

// ErrNoDoorbells says the host offers no way to see a guest write without
// a vCPU exit (KVM without KVM_CAP_IOEVENTFD).
var ErrNoDoorbells = errors.New("doorbells need KVM_CAP_IOEVENTFD, which this host's KVM does not offer; the write exits to the VMM instead")
