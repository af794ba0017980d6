package machine

import (
	"io"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/memory"
)

// platform is the set of legacy devices every govmm VM has.
type platform struct {
	io, mmio  *devices.Bus
	serial    *devices.Serial
	i8042     *devices.I8042
	rtc       *devices.RTC
	post      *devices.POST
	debugExit *devices.DebugExit
}

// irqLines hands out the interrupt controller's inputs.
type irqLines interface {
	line(irq uint32) devices.IRQLine
}

// newPlatform builds the devices and registers them on fresh buses. end
// is called when the guest asks to stop: with a status from the debug-exit
// device, or with reset from the i8042.
func newPlatform(irqs irqLines, mem *memory.Memory, serialOut, log io.Writer, start time.Time, powerOff func(status int), reset func()) (*platform, error) {
	p := &platform{
		io:        devices.NewBus(devices.PortIO),
		mmio:      devices.NewBus(devices.MMIO),
		serial:    devices.NewSerial(irqs.line(devices.IRQCOM1), serialOut),
		i8042:     devices.NewI8042(reset),
		rtc:       devices.NewRTC(time.Now, devices.RTCMemory(lowRAM(mem), highRAM(mem))),
		post:      devices.NewPOST(),
		debugExit: devices.NewDebugExit(powerOff, start, log),
	}
	regs := []struct {
		bus        *devices.Bus
		base, size uint64
		name       string
		dev        devices.Device
	}{
		{p.io, devices.PortCOM1, devices.PortCOM1Size, "serial (COM1)", p.serial},
		{p.io, devices.PortI8042Data, 1, "i8042 data", p.i8042},
		{p.io, devices.PortI8042Command, 1, "i8042 command", devices.Offset(p.i8042, devices.I8042CommandOffset)},
		{p.io, devices.PortRTC, devices.PortRTCSize, "rtc", p.rtc},
		{p.io, devices.PortPOST, 1, "post", p.post},
		{p.io, devices.PortDebugExit, devices.PortDebugExitSize, "debug-exit", p.debugExit},
		{p.mmio, uint64(boot.SerialMMIO), boot.SerialMMIOSize, "serial (MMIO alias)", p.serial},
		{p.mmio, uint64(boot.DebugExitMMIO), boot.DebugExitMMIOSize, "debug-exit (MMIO alias)", p.debugExit},
	}
	for _, r := range regs {
		if err := r.bus.Register(r.base, r.size, r.name, r.dev); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// lowRAM is the RAM below the MMIO hole; highRAM the RAM above 4 GiB.
func lowRAM(mem *memory.Memory) uint64 {
	var n uint64
	for _, r := range mem.Regions() {
		if r.Start < memory.HoleStart {
			n += r.Size()
		}
	}
	return n
}

func highRAM(mem *memory.Memory) uint64 { return mem.Size() - lowRAM(mem) }
