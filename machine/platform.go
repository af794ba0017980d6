package machine

import (
	"context"
	"fmt"
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
	debugExit *devices.DebugExit // nil when the debug devices are off
}

// serialStall is how long the end of a run waits for the serial output's
// reader to take another byte before giving up on the rest.
const serialStall = 10 * time.Second

// irqLines hands out the interrupt controller's inputs.
type irqLines interface {
	line(irq uint32) devices.IRQLine
}

// newPlatform builds the devices and registers them on fresh buses.
// powerOff is called when the guest writes a status to the debug-exit
// device, reset when it pulses the i8042's reset line. debug adds govmm's
// own guest-visible debug devices: the debug-exit device (exit status,
// boot-timer marks, the exit-benchmark register) at its port and MMIO
// window, and the serial port's MMIO alias for guest ring-3 code.
func newPlatform(irqs irqLines, mem *memory.Memory, serialOut, log io.Writer, start time.Time, debug bool, powerOff func(status int), reset func()) (*platform, error) {
	p := &platform{
		io:     devices.NewBus(devices.PortIO),
		mmio:   devices.NewBus(devices.MMIO),
		serial: devices.NewSerial(irqs.line(devices.IRQCOM1), serialOut),
		i8042:  devices.NewI8042(irqs.line(devices.IRQKeyboard), reset),
		rtc:    devices.NewRTC(time.Now, devices.RTCMemory(lowRAM(mem), highRAM(mem))),
		post:   devices.NewPOST(),
	}
	type reg struct {
		bus        *devices.Bus
		base, size uint64
		name       string
		dev        devices.Device
	}
	regs := []reg{
		{p.io, devices.PortCOM1, devices.PortCOM1Size, "serial (COM1)", p.serial},
		{p.io, devices.PortI8042Data, 1, "i8042 data", p.i8042},
		{p.io, devices.PortI8042Command, 1, "i8042 command", devices.Offset(p.i8042, devices.I8042CommandOffset)},
		{p.io, devices.PortRTC, devices.PortRTCSize, "rtc", p.rtc},
		{p.io, devices.PortPOST, 1, "post", p.post},
	}
	if debug {
		p.debugExit = devices.NewDebugExit(powerOff, start, log)
		regs = append(regs,
			reg{p.io, devices.PortDebugExit, devices.PortDebugExitSize, "debug-exit", p.debugExit},
			reg{p.mmio, uint64(boot.SerialMMIO), boot.SerialMMIOSize, "serial (MMIO alias)", p.serial},
			reg{p.mmio, uint64(boot.DebugExitMMIO), boot.DebugExitMMIOSize, "debug-exit (MMIO alias)", p.debugExit})
	}
	for _, r := range regs {
		if err := r.bus.Register(r.base, r.size, r.name, r.dev); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// finish ends the devices' part of a run once the vCPUs have stopped: it
// waits until the guest's serial output has reached its writer (govmm exec
// and the tests read every byte of it), then says in log what the guest
// lost or was kept from logging. The wait ends early only when the
// output's reader takes nothing for serialStall.
func (p *platform) finish(log io.Writer) {
	if err := p.serial.Flush(context.Background(), serialStall); err != nil {
		fmt.Fprintf(log, "govmm: warning: %v\n", err)
	}
	if st := p.serial.Stats(); st.Dropped > 0 || st.IRQErrors > 0 {
		fmt.Fprintf(log, "govmm: serial: %d output bytes lost (%d failed writes to the output; the rest sent while the %d-byte buffer was full), %d interrupt line errors\n",
			st.Dropped, st.OutErrors, devices.TxBufferSize, st.IRQErrors)
	}
	if p.debugExit != nil {
		if n := p.debugExit.MarksHeldBack(); n > 0 {
			fmt.Fprintf(log, "govmm: boot-timer: %d marks in all not logged (rate limit: %d, then one per %v)\n", n, devices.MarkBurst, devices.MarkInterval)
		}
	}
}

// close stops the devices from reaching the interrupt controller, which is
// about to go away.
func (p *platform) close() {
	p.serial.Detach()
	p.i8042.Detach()
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
