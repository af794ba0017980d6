package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices"
)

// Slots is how many devices bus 0 has room for.
const Slots = 32

// Window is a range of addresses (or ports) the Bus places BARs in.
type Window struct {
	Start, Size uint64
}

func (w Window) end() uint64 { return w.Start + w.Size }

// BusConfig is what a Bus is built from.
type BusConfig struct {
	// IO and MMIO are govmm's buses, where BARs are decoded.
	IO, MMIO *devices.Bus
	// Interrupts gives INTx lines, MSI vectors and doorbells.
	Interrupts devices.Interrupts
	// MMIO32, MMIO64 and IOPorts are where BARs are placed: 32-bit memory
	// BARs in MMIO32; 64-bit ones in MMIO64 (in MMIO32 when MMIO64 is
	// empty); I/O BARs in IOPorts.
	MMIO32, MMIO64, IOPorts Window
	// INTxGSI is the interrupt controller input that slot's INTx pin
	// (0 for INTA to 3 for INTD) drives.
	INTxGSI func(slot, pin int) uint32
}

// Bus is PCI bus 0 with its host bridge at slot 0.
type Bus struct {
	cfg BusConfig

	mu     sync.Mutex
	slots  [Slots]*Function
	cursor [3]uint64 // next free address in MMIO32, MMIO64, IOPorts
	closed bool

	// address is mechanism #1's CONFIG_ADDRESS register.
	address atomic.Uint32

	// Undecoded counts BARs the guest enabled where they could not be
	// decoded: over another device's range, or past the I/O space.
	Undecoded atomic.Uint64
}

// NewBus returns a bus holding only the host bridge.
func NewBus(c BusConfig) (*Bus, error) {
	if c.IO == nil || c.MMIO == nil || c.Interrupts == nil || c.INTxGSI == nil {
		return nil, errors.New("pci: NewBus needs the I/O and MMIO buses, the interrupts and the INTx routing")
	}
	b := &Bus{cfg: c}
	b.cursor = [3]uint64{c.MMIO32.Start, c.MMIO64.Start, c.IOPorts.Start}
	hb, err := NewHostBridge()
	if err != nil {
		return nil, err
	}
	if err := b.AddAt(0, hb); err != nil {
		return nil, err
	}
	return b, nil
}

// SlotName is the bus:device.function name of slot's function 0, as Linux
// writes it in /sys/bus/pci/devices (without the domain).
func SlotName(slot int) string { return fmt.Sprintf("00:%02x.0", slot) }

// Add puts f in the first free slot and returns the slot.
func (b *Bus) Add(f *Function) (int, error) {
	b.mu.Lock()
	slot := -1
	for s := 1; s < Slots; s++ {
		if b.slots[s] == nil {
			slot = s
			break
		}
	}
	b.mu.Unlock()
	if slot < 0 {
		return 0, fmt.Errorf("pci: all %d slots of bus 0 are taken", Slots)
	}
	return slot, b.AddAt(slot, f)
}

// AddAt puts f in slot: it places f's BARs in the windows, wires its INTx
// pin and allocates its MSI-X vectors.
func (b *Bus) AddAt(slot int, f *Function) error {
	if slot < 0 || slot >= Slots {
		return fmt.Errorf("pci: slot %d: bus 0 has slots 0 to %d", slot, Slots-1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("pci: the bus is closed")
	}
	if b.slots[slot] != nil {
		return fmt.Errorf("pci: slot %d is taken", slot)
	}
	addrs, err := b.place(f)
	if err != nil {
		return fmt.Errorf("pci %s: %w", SlotName(slot), err)
	}
	var vectors []devices.MSIVector
	if f.msix != nil {
		for v := 0; v < f.msix.cfg.Vectors; v++ {
			vec, err := b.cfg.Interrupts.NewMSIVector()
			if err != nil {
				closeVectors(vectors)
				return fmt.Errorf("pci %s: MSI-X vector %d: %w", SlotName(slot), v, err)
			}
			vectors = append(vectors, vec)
		}
	}
	var line devices.IRQLine
	if pin := f.cfg.Pin; pin != PinNone {
		gsi := b.cfg.INTxGSI(slot, int(pin)-1)
		line = b.cfg.Interrupts.Line(gsi)
		f.mu.Lock()
		f.space[RegInterruptLine] = byte(gsi) // as firmware would tell the OS
		f.mu.Unlock()
	}
	for i, a := range addrs {
		if f.cfg.BARs[i].Kind != BARNone {
			f.setBARAddress(i, a)
		}
	}
	f.attach(b, SlotName(slot), line, vectors)
	b.slots[slot] = f
	return nil
}

// place finds addresses for f's BARs and advances the cursors; b.mu must
// be held. Each BAR is aligned to its size, as BAR sizing requires.
func (b *Bus) place(f *Function) ([BARCount]uint64, error) {
	var out [BARCount]uint64
	cursor := b.cursor
	for i, bar := range f.cfg.BARs {
		w := 0
		win := b.cfg.MMIO32
		switch bar.Kind {
		case BARNone:
			continue
		case BARMem64:
			if b.cfg.MMIO64.Size > 0 {
				w, win = 1, b.cfg.MMIO64
			}
		case BARIO:
			w, win = 2, b.cfg.IOPorts
		}
		a := (cursor[w] + bar.Size - 1) &^ (bar.Size - 1)
		if a < cursor[w] || a+bar.Size > win.end() || a+bar.Size < a {
			return out, fmt.Errorf("BAR%d (%v, %#x bytes) does not fit in the window [%#x, %#x)", i, bar.Kind, bar.Size, win.Start, win.end())
		}
		out[i] = a
		cursor[w] = a + bar.Size
	}
	b.cursor = cursor
	return out, nil
}

// Function returns the function in slot, or nil.
func (b *Bus) Function(slot int) *Function {
	if slot < 0 || slot >= Slots {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.slots[slot]
}

// mapBAR registers BAR i of f on govmm's bus, with its doorbells.
func (b *Bus) mapBAR(f *Function, i int, m mapping) (mapping, error) {
	bus := b.cfg.MMIO
	if m.space == devices.PortIO {
		bus = b.cfg.IO
	}
	if err := bus.Register(m.base, m.size, barName(f, i), barDevice{f, i}); err != nil {
		b.Undecoded.Add(1)
		return m, err
	}
	for _, d := range f.cfg.BARs[i].Doorbells {
		bell, err := b.cfg.Interrupts.Doorbell(m.space, m.base+d.Offset, d.size(), d.Ring)
		if err != nil {
			continue // the write exits and reaches the device's Write instead
		}
		m.bells = append(m.bells, bell)
	}
	return m, nil
}

// unmapBAR undoes mapBAR.
func (b *Bus) unmapBAR(f *Function, i int, m mapping) {
	for _, bell := range m.bells {
		if err := bell.Close(); err != nil {
			f.irqErrors.Add(1)
		}
	}
	bus := b.cfg.MMIO
	if m.space == devices.PortIO {
		bus = b.cfg.IO
	}
	if err := bus.Unregister(m.base, barName(f, i)); err != nil {
		b.Undecoded.Add(1)
	}
}

func barName(f *Function, i int) string { return fmt.Sprintf("pci %s BAR%d", f.name, i) }

// Close turns off every BAR's decoding and releases the MSI vectors.
func (b *Bus) Close() error {
	b.mu.Lock()
	b.closed = true
	slots := b.slots
	b.mu.Unlock()
	var errs []error
	for _, f := range slots {
		if f == nil {
			continue
		}
		f.mapMu.Lock()
		f.applyMappings([BARCount]mapping{})
		f.mapMu.Unlock()
		if f.msix != nil {
			errs = append(errs, closeVectors(f.msix.vectors))
		}
	}
	return errors.Join(errs...)
}

func closeVectors(vs []devices.MSIVector) error {
	var errs []error
	for _, v := range vs {
		errs = append(errs, v.Close())
	}
	return errors.Join(errs...)
}

// configFunction returns the function that a configuration access to
// bus, device, function reaches, or nil for an absent one.
func (b *Bus) configFunction(bus, dev, fn uint32) *Function {
	if bus != 0 || fn != 0 || dev >= Slots {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.slots[dev]
}

// readConfig reads configuration space; absent functions read all-ones.
func (b *Bus) readConfig(bus, dev, fn uint32, reg uint64, p []byte) {
	f := b.configFunction(bus, dev, fn)
	if f == nil {
		fill(p, 0xFF)
		return
	}
	f.ReadConfig(reg, p)
}

// writeConfig writes configuration space; writes to absent functions are
// dropped.
func (b *Bus) writeConfig(bus, dev, fn uint32, reg uint64, p []byte) {
	if f := b.configFunction(bus, dev, fn); f != nil {
		f.WriteConfig(reg, p)
	}
}

func fill(p []byte, v byte) {
	for i := range p {
		p[i] = v
	}
}

// Configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): a 32-bit
// write to CONFIG_ADDRESS (port 0xCF8) names the register, and
// CONFIG_DATA (0xCFC-0xCFF) reads or writes it:
//
//	bit 31     enable
//	bits 23:16 bus
//	bits 15:11 device
//	bits 10:8  function
//	bits 7:2   register (dword)
const (
	// PortConfigAddress is CONFIG_ADDRESS; PortConfigSize covers it and
	// CONFIG_DATA.
	PortConfigAddress = 0xCF8
	PortConfigSize    = 8

	configDataOffset = 4 // CONFIG_DATA from CONFIG_ADDRESS

	ConfigEnable       = 1 << 31
	configAddressMask  = ConfigEnable | 0x00FF_FFFC // bits 30:24 and 1:0 read as zero
	configBusShift     = 16
	configDeviceShift  = 11
	configFuncShift    = 8
	configRegisterMask = 0xFC
)

// ConfigPorts is mechanism #1, to be registered at PortConfigAddress for
// PortConfigSize ports.
func (b *Bus) ConfigPorts() devices.Device { return configPorts{b} }

type configPorts struct{ b *Bus }

func (c configPorts) target(off uint64) (bus, dev, fn uint32, reg uint64, ok bool) {
	a := c.b.address.Load()
	if a&ConfigEnable == 0 || off < configDataOffset {
		return 0, 0, 0, 0, false
	}
	return a >> configBusShift & 0xFF, a >> configDeviceShift & 0x1F, a >> configFuncShift & 0x7,
		uint64(a&configRegisterMask) + off - configDataOffset, true
}

func (c configPorts) Read(off uint64, p []byte) {
	if off == 0 && len(p) == 4 {
		binary.LittleEndian.PutUint32(p, c.b.address.Load())
		return
	}
	bus, dev, fn, reg, ok := c.target(off)
	if !ok {
		fill(p, 0xFF)
		return
	}
	c.b.readConfig(bus, dev, fn, reg, p)
}

func (c configPorts) Write(off uint64, p []byte) {
	if off == 0 && len(p) == 4 {
		c.b.address.Store(binary.LittleEndian.Uint32(p) & configAddressMask)
		return
	}
	if bus, dev, fn, reg, ok := c.target(off); ok {
		c.b.writeConfig(bus, dev, fn, reg, p)
	}
}

// ECAM (PCI Express 4.0, 7.2.2): configuration space as memory, 4 KiB per
// function at bus << 20 | device << 15 | function << 12.
const (
	ECAMBusShift    = 20
	ECAMDeviceShift = 15
	ECAMFuncShift   = 12
	// ECAMBusSize is one bus's share of the window (1 MiB).
	ECAMBusSize = 1 << ECAMBusShift
)

// ECAM is the enhanced configuration window, to be registered at the
// address the MCFG table names.
func (b *Bus) ECAM() devices.Device { return ecam{b} }

type ecam struct{ b *Bus }

func ecamTarget(off uint64) (bus, dev, fn uint32, reg uint64) {
	return uint32(off>>ECAMBusShift) & 0xFF, uint32(off>>ECAMDeviceShift) & 0x1F, uint32(off>>ECAMFuncShift) & 0x7, off & (ExtConfigSize - 1)
}

func (e ecam) Read(off uint64, p []byte) {
	bus, dev, fn, reg := ecamTarget(off)
	e.b.readConfig(bus, dev, fn, reg, p)
}

func (e ecam) Write(off uint64, p []byte) {
	bus, dev, fn, reg := ecamTarget(off)
	e.b.writeConfig(bus, dev, fn, reg, p)
}
