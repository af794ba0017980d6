package devices

// The legacy PC I/O ports and ISA interrupt numbers of the devices in this
// package. The 8259 PIC (0x20, 0xa0) is emulated inside KVM, and so is the
// 8254 PIT (0x40-0x43, and port 0x61's speaker bits) unless the machine
// uses this package's PIT instead (pit.go, govmm -pit user).
const (
	PortCOM1     = 0x3f8 // 16550A UART, 8 registers
	PortCOM1Size = 8

	PortI8042Data    = 0x60 // 8042 keyboard controller: data
	PortI8042Command = 0x64 // 8042: command (write) and status (read)

	PortRTC     = 0x70 // MC146818 CMOS: 0x70 index, 0x71 data
	PortRTCSize = 2

	PortPOST = 0x80 // BIOS power-on-self-test code port

	PortDebugExit     = 0xf4 // govmm's debug-exit device, 4 registers
	PortDebugExitSize = 4
)

// ISA interrupt lines (IRQ numbers at the PIC / IOAPIC pins 0-15).
const (
	IRQCOM1 = 4
	IRQRTC  = 8
)

// Offset returns a Device that adds delta to every offset before handing the
// access to d. It lets one device own registers that are not contiguous:
// the i8042 answers at ports 0x60 and 0x64 but not 0x61-0x63, so it is
// registered twice, the second time as Offset(kbc, I8042CommandOffset).
func Offset(d Device, delta uint64) Device { return offsetDevice{d, delta} }

type offsetDevice struct {
	d     Device
	delta uint64
}

func (o offsetDevice) Read(off uint64, p []byte)  { o.d.Read(off+o.delta, p) }
func (o offsetDevice) Write(off uint64, p []byte) { o.d.Write(off+o.delta, p) }
