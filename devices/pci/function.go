package pci

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices"
)

// BARKind says what a base address register decodes.
type BARKind int

const (
	BARNone  BARKind = iota // the slot is unused (or the upper half of a 64-bit BAR)
	BARMem32                // memory below 4 GiB
	BARMem64                // memory anywhere; takes this slot and the next
	BARIO                   // I/O ports
)

func (k BARKind) String() string {
	switch k {
	case BARMem32:
		return "mem32"
	case BARMem64:
		return "mem64"
	case BARIO:
		return "io"
	}
	return "none"
}

// BAR is one region a device asks for.
type BAR struct {
	Kind BARKind
	// Size is a power of two: at least 16 bytes for memory (the page,
	// 4096, is what guests like), 4 to 256 for I/O.
	Size         uint64
	Prefetchable bool
	// Dev handles accesses to the region, at offsets from its start.
	// Where an MSI-X table or PBA lies in the BAR, those offsets go to
	// the Function instead.
	Dev devices.Device
	// Doorbells are registers whose 4-byte writes the device only needs
	// to hear of, not to see: where the host can, the Bus serves them
	// with an ioeventfd and calls Ring without a vCPU exit. Dev.Write
	// must handle them too (any other width, or hosts without ioeventfd).
	Doorbells []Doorbell
}

// Doorbell is a write-only register of a BAR.
type Doorbell struct {
	Offset uint64
	Ring   func()
	// Size is the width of the guest's writes that ring it: 2 or 4
	// bytes, aligned to it (virtio's notifications are 16-bit); 0 means
	// 4. Writes of other widths reach Dev.Write.
	Size int
}

// size is the doorbell's write width.
func (d Doorbell) size() int {
	if d.Size == 0 {
		return 4
	}
	return d.Size
}

// MSIXConfig places a function's MSI-X table and pending-bit array.
type MSIXConfig struct {
	Vectors     int    // 1 to 2048
	BAR         int    // the memory BAR that holds both
	TableOffset uint64 // 8-byte aligned; 16 bytes per vector
	PBAOffset   uint64 // 8-byte aligned; 8 bytes per 64 vectors
}

// Config is what a function is built from.
type Config struct {
	VendorID, DeviceID     uint16
	SubsysVendor, SubsysID uint16
	Class                  uint32 // base class << 16 | subclass << 8 | interface
	Revision               uint8
	BARs                   [BARCount]BAR
	// Pin is the INTx pin the function uses (PinA-PinD), or PinNone.
	Pin uint8
	// MSIX, if set, adds an MSI-X capability.
	MSIX *MSIXConfig
	// VendorCap, if set, adds a vendor-specific capability holding these
	// bytes (at most 253).
	VendorCap []byte
	// VendorCaps add more vendor-specific capabilities after VendorCap,
	// in order, each holding its bytes (what follows the ID, next and
	// length bytes): virtio-pci's structures (virtio 1.2, 4.1.4).
	VendorCaps [][]byte
}

// Function is one PCI function: its configuration space and what hangs
// off it. Methods are safe for concurrent use.
type Function struct {
	cfg Config

	// mapMu orders configuration writes, so that BAR mappings and
	// interrupt levels are applied in the order the guest asked for
	// them; then lineMu, then mu. Calls out of the function (bus
	// registration, interrupt lines, MSI triggers) never hold mu.
	mapMu  sync.Mutex
	lineMu sync.Mutex
	mu     sync.Mutex

	space [ConfigSize]byte // what reads return
	wmask [ConfigSize]byte // bits a write may change
	w1c   [ConfigSize]byte // bits a write of 1 clears

	intx      bool // the device asserts INTx
	lineLevel bool // the level last driven on line
	line      devices.IRQLine
	msix      *msixState

	host   host
	name   string
	mapped [BARCount]mapping // what the host decodes now

	irqErrors atomic.Uint64 // interrupt deliveries that failed on a guest write
}

// host is the Bus as a function sees it.
type host interface {
	mapBAR(f *Function, i int, m mapping) (mapping, error)
	unmapBAR(f *Function, i int, m mapping)
}

// mapping is a BAR as decoded: which bus, where.
type mapping struct {
	on    bool
	space devices.Space
	base  uint64
	size  uint64
	bells []devices.Doorbell // registered doorbells, closed on unmap
}

// NewFunction builds a function's configuration space from c.
func NewFunction(c Config) (*Function, error) {
	f := &Function{cfg: c}
	le := binary.LittleEndian
	le.PutUint16(f.space[RegVendorID:], c.VendorID)
	le.PutUint16(f.space[RegDeviceID:], c.DeviceID)
	f.space[RegRevision] = c.Revision
	f.space[RegClass] = byte(c.Class)
	f.space[RegClass+1] = byte(c.Class >> 8)
	f.space[RegClass+2] = byte(c.Class >> 16)
	f.space[RegHeaderType] = HeaderTypeDevice
	le.PutUint16(f.space[RegSubsysVendor:], c.SubsysVendor)
	le.PutUint16(f.space[RegSubsysID:], c.SubsysID)
	if c.Pin > PinD {
		return nil, fmt.Errorf("pci: INTx pin %d: give PinNone or PinA-PinD", c.Pin)
	}
	f.space[RegInterruptPin] = c.Pin
	putMask16(f.wmask[:], RegCommand, cmdWritable)
	putMask16(f.w1c[:], RegStatus, statusW1C)
	f.wmask[RegCacheLineSize] = 0xFF
	f.wmask[RegLatencyTimer] = 0xFF
	f.wmask[RegInterruptLine] = 0xFF
	if err := f.buildBARs(); err != nil {
		return nil, err
	}
	if err := f.buildCaps(); err != nil {
		return nil, err
	}
	return f, nil
}

func putMask16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }

func putMask32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// buildBARs checks the BARs and writes their type bits and size masks.
func (f *Function) buildBARs() error {
	for i := 0; i < BARCount; i++ {
		b := f.cfg.BARs[i]
		off := RegBAR0 + 4*i
		if b.Kind == BARNone {
			continue
		}
		if b.Dev == nil {
			return fmt.Errorf("pci: BAR%d has no device to handle it", i)
		}
		if b.Size == 0 || b.Size&(b.Size-1) != 0 {
			return fmt.Errorf("pci: BAR%d size %#x is not a power of two", i, b.Size)
		}
		for _, d := range b.Doorbells {
			n := uint64(d.size())
			if (n != 2 && n != 4) || d.Offset+n > b.Size || d.Offset%n != 0 || d.Ring == nil {
				return fmt.Errorf("pci: BAR%d doorbell at %#x: give a 2- or 4-byte register inside the BAR, aligned to its size, with a Ring function", i, d.Offset)
			}
		}
		switch b.Kind {
		case BARIO:
			if b.Size < 4 || b.Size > 256 {
				return fmt.Errorf("pci: I/O BAR%d of %d bytes: give 4 to 256", i, b.Size)
			}
			f.space[off] = barIOSpace
			putMask32(f.wmask[:], off, ^uint32(b.Size-1)&^barIOFlagBits)
		case BARMem32:
			if b.Size < 16 || b.Size > 1<<31 {
				return fmt.Errorf("pci: 32-bit memory BAR%d of %#x bytes: give 16 bytes to 2 GiB", i, b.Size)
			}
			f.space[off] = f.memFlags(b, 0)
			putMask32(f.wmask[:], off, ^uint32(b.Size-1)&^barMemFlagBits)
		case BARMem64:
			if i == BARCount-1 || f.cfg.BARs[i+1].Kind != BARNone {
				return fmt.Errorf("pci: 64-bit BAR%d needs BAR%d free for its upper half", i, i+1)
			}
			if b.Size < 16 || b.Size > 1<<40 {
				return fmt.Errorf("pci: 64-bit memory BAR%d of %#x bytes: give 16 bytes to 1 TiB", i, b.Size)
			}
			f.space[off] = f.memFlags(b, barMem64)
			mask := ^(b.Size - 1)
			putMask32(f.wmask[:], off, uint32(mask)&^barMemFlagBits)
			putMask32(f.wmask[:], off+4, uint32(mask>>32))
			i++ // the upper half
		default:
			return fmt.Errorf("pci: BAR%d has unknown kind %d", i, b.Kind)
		}
	}
	return nil
}

func (f *Function) memFlags(b BAR, typ byte) byte {
	if b.Prefetchable {
		typ |= barPrefetchable
	}
	return typ
}

// buildCaps lays out the capability list from HeaderSize up.
func (f *Function) buildCaps() error {
	next := HeaderSize
	var prev int // offset of the previous capability's next pointer; 0: RegCapPtr
	link := func(at int) {
		if prev == 0 {
			f.space[RegCapPtr] = byte(at)
		} else {
			f.space[prev] = byte(at)
		}
		prev = at + 1
		f.space[RegStatus] |= StatusCapList
	}
	vendor := f.cfg.VendorCaps
	if f.cfg.VendorCap != nil {
		vendor = append([][]byte{f.cfg.VendorCap}, vendor...)
	}
	for _, v := range vendor {
		if len(v) > 253 {
			return fmt.Errorf("pci: vendor capability of %d bytes: at most 253 fit", len(v))
		}
		if next+3+len(v) > ConfigSize {
			return fmt.Errorf("pci: no room for %d vendor capabilities", len(vendor))
		}
		link(next)
		f.space[next] = CapIDVendor
		f.space[next+2] = byte(3 + len(v))
		copy(f.space[next+3:], v)
		next = (next + 3 + len(v) + 3) &^ 3
	}
	if m := f.cfg.MSIX; m != nil {
		if next+msixCapSize > ConfigSize {
			return fmt.Errorf("pci: no room for the MSI-X capability")
		}
		ms, err := newMSIX(f, *m, next)
		if err != nil {
			return err
		}
		link(next)
		f.msix = ms
	}
	return nil
}

// attach connects the function to its bus.
func (f *Function) attach(h host, name string, line devices.IRQLine, vectors []devices.MSIVector) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.host, f.name, f.line = h, name, line
	if f.msix != nil {
		f.msix.vectors = vectors
	}
}

// Name is the function's bus:device.function, once on a bus.
func (f *Function) Name() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name
}

// Config returns what the function was built from.
func (f *Function) Config() Config { return f.cfg }

// ReadConfig reads configuration space at off (0 to ExtConfigSize-1) into
// p. Bytes past ConfigSize, and past the space, read as zero.
func (f *Function) ReadConfig(off uint64, p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range p {
		o := off + uint64(i)
		p[i] = 0
		if o < ConfigSize {
			p[i] = f.space[o]
		}
	}
}

// WriteConfig writes p to configuration space at off. Read-only bits keep
// their value, write-1-to-clear bits clear, and the effects follow: BARs
// decoded or not, INTx level, MSI-X enable and masks.
func (f *Function) WriteConfig(off uint64, p []byte) {
	f.mapMu.Lock()
	defer f.mapMu.Unlock()
	f.lineMu.Lock()
	f.mu.Lock()
	for i, v := range p {
		o := off + uint64(i)
		if o >= ConfigSize {
			break
		}
		f.space[o] = f.space[o]&^f.wmask[o] | v&f.wmask[o]
		f.space[o] &^= v & f.w1c[o]
	}
	var deliver []pending
	if f.msix != nil {
		deliver = f.msix.controlChanged()
	}
	want := f.decodeLocked()
	level, changed := f.levelLocked()
	f.mu.Unlock()
	if changed {
		if err := f.driveLine(level); err != nil {
			f.irqErrors.Add(1)
		}
	}
	f.lineMu.Unlock()
	f.applyMappings(want)
	f.msixDeliver(deliver)
}

// IRQErrors counts interrupt deliveries (INTx levels, MSI-X messages)
// that failed on a path with no caller to tell: a guest's write.
func (f *Function) IRQErrors() uint64 { return f.irqErrors.Load() }

// commandLocked returns the command register; mu must be held.
func (f *Function) commandLocked() uint16 {
	return binary.LittleEndian.Uint16(f.space[RegCommand:])
}

// BARAddress returns where BAR i points now (for a 64-bit BAR, both
// halves), without its type bits.
func (f *Function) BARAddress(i int) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barAddrLocked(i)
}

func (f *Function) barAddrLocked(i int) uint64 {
	le := binary.LittleEndian
	lo := uint64(le.Uint32(f.space[RegBAR0+4*i:]))
	switch f.cfg.BARs[i].Kind {
	case BARIO:
		return lo &^ barIOFlagBits
	case BARMem32:
		return lo &^ barMemFlagBits
	case BARMem64:
		hi := uint64(le.Uint32(f.space[RegBAR0+4*i+4:]))
		return hi<<32 | lo&^barMemFlagBits
	}
	return 0
}

// setBARAddress places BAR i at addr, as firmware does before the OS runs.
func (f *Function) setBARAddress(i int, addr uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off := RegBAR0 + 4*i
	le := binary.LittleEndian
	lo := le.Uint32(f.space[off:])
	le.PutUint32(f.space[off:], lo&^le.Uint32(f.wmask[off:])|uint32(addr)&le.Uint32(f.wmask[off:]))
	if f.cfg.BARs[i].Kind == BARMem64 {
		le.PutUint32(f.space[off+4:], uint32(addr>>32)&le.Uint32(f.wmask[off+4:]))
	}
}

// decodeLocked returns the mapping each BAR should have now.
func (f *Function) decodeLocked() [BARCount]mapping {
	var want [BARCount]mapping
	cmd := f.commandLocked()
	for i, b := range f.cfg.BARs {
		addr := f.barAddrLocked(i)
		m := mapping{base: addr, size: b.Size}
		switch b.Kind {
		case BARIO:
			m.space = devices.PortIO
			m.on = cmd&CmdIO != 0 && addr != 0 && addr+b.Size <= 0x10000
		case BARMem32, BARMem64:
			m.space = devices.MMIO
			m.on = cmd&CmdMemory != 0 && addr != 0 && addr+b.Size > addr && bits.Len64(addr+b.Size-1) <= maxPhysBits
		}
		if m.on {
			want[i] = m
		}
	}
	return want
}

// maxPhysBits bounds where a BAR may be decoded: the guest-physical
// address width KVM supports on x86 (52 bits).
const maxPhysBits = 52

// applyMappings brings the host's decoding in line with want: BARs that
// moved or stopped are unmapped, new ones mapped. mapMu must be held.
func (f *Function) applyMappings(want [BARCount]mapping) {
	if f.host == nil {
		return
	}
	for i := range want {
		cur := f.mapped[i]
		if cur.on && (!want[i].on || cur.base != want[i].base) {
			f.host.unmapBAR(f, i, cur)
			f.mapped[i] = mapping{}
		}
	}
	for i := range want {
		if want[i].on && !f.mapped[i].on {
			m, err := f.host.mapBAR(f, i, want[i])
			if err != nil {
				continue // left unmapped: the guest placed it over something else
			}
			f.mapped[i] = m
		}
	}
}

// Mapped reports where BAR i is decoded now, if it is.
func (f *Function) Mapped(i int) (base uint64, ok bool) {
	f.mapMu.Lock()
	defer f.mapMu.Unlock()
	return f.mapped[i].base, f.mapped[i].on
}

// SetINTx asserts (true) or deasserts the function's INTx pin. The line
// follows unless the guest has set CmdINTxDisable; the status register's
// StatusINTx shows the pin either way.
func (f *Function) SetINTx(asserted bool) error {
	f.lineMu.Lock()
	defer f.lineMu.Unlock()
	f.mu.Lock()
	f.intx = asserted
	if asserted {
		f.space[RegStatus] |= StatusINTx
	} else {
		f.space[RegStatus] &^= StatusINTx
	}
	level, changed := f.levelLocked()
	f.mu.Unlock()
	if changed {
		return f.driveLine(level)
	}
	return nil
}

// levelLocked computes the INTx line's level and whether it differs from
// the level last driven, which it records.
func (f *Function) levelLocked() (level, changed bool) {
	level = f.intx && f.commandLocked()&CmdINTxDisable == 0 && f.cfg.Pin != PinNone
	changed = level != f.lineLevel
	f.lineLevel = level
	return level, changed
}

// driveLine sets the INTx line; lineMu must be held.
func (f *Function) driveLine(level bool) error {
	if f.line == nil {
		return nil
	}
	return f.line.SetLevel(level)
}

// barDevice is what the Bus registers for BAR i.
type barDevice struct {
	f *Function
	i int
}

func (d barDevice) Read(off uint64, p []byte) {
	if d.f.msix != nil && d.f.msix.claims(d.i, off, len(p)) {
		d.f.msix.read(d.i, off, p)
		return
	}
	d.f.cfg.BARs[d.i].Dev.Read(off, p)
}

func (d barDevice) Write(off uint64, p []byte) {
	if d.f.msix != nil && d.f.msix.claims(d.i, off, len(p)) {
		d.f.msixDeliver(d.f.msix.write(d.i, off, p))
		return
	}
	d.f.cfg.BARs[d.i].Dev.Write(off, p)
}
