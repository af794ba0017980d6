// Package devices holds the bus that routes port-I/O and MMIO exits to
// emulated devices, and the legacy PC devices themselves: serial, i8042, RTC,
// the debug-exit port and friends.
//
// Devices see offsets into their own range, never absolute ports or
// addresses; their interrupt line and their output are handed to them, so a
// test drives one with a bytes.Buffer and a recording IRQLine.
package devices

// Device is an emulated register block. off is the offset from the start of
// the range the device was registered at; len(p) is the access width (1, 2,
// 4 or 8 bytes). Read fills p; Write consumes it. A device must not retain p.
type Device interface {
	Read(off uint64, p []byte)
	Write(off uint64, p []byte)
}

// IRQLine is one interrupt input of the interrupt controller, handed to a
// device that raises interrupts.
type IRQLine interface {
	// SetLevel drives the line high (asserted) or low.
	SetLevel(high bool) error
}

// IRQFunc adapts a function to IRQLine.
type IRQFunc func(high bool) error

// SetLevel calls f.
func (f IRQFunc) SetLevel(high bool) error { return f(high) }
