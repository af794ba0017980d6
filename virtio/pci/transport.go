// Package pci is the virtio-pci modern transport (virtio 1.2, 4.1): a
// devices/pci Function whose one memory BAR holds the common, ISR,
// device-specific and notification structures and the MSI-X table, named
// by vendor-specific capabilities. Only VERSION_1 is offered (no legacy
// I/O BAR). Notifications reach the device through doorbells (ioeventfds
// where KVM has them: the driver's write never exits to govmm's vCPU
// loop), and interrupts leave through MSI-X irqfds, or INTx and the ISR
// while the driver has MSI-X off.
package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
)

// Configuration structure types (virtio 1.2, 4.1.4).
const (
	capCommon = 1 // VIRTIO_PCI_CAP_COMMON_CFG
	capNotify = 2 // VIRTIO_PCI_CAP_NOTIFY_CFG
	capISR    = 3 // VIRTIO_PCI_CAP_ISR_CFG
	capDevice = 4 // VIRTIO_PCI_CAP_DEVICE_CFG
)

// Where the structures lie in the BAR (each in a page of its own, so a
// driver may map them separately), and the BAR's number.
const (
	BAR           = 0
	CommonOffset  = 0x0000
	ISROffset     = 0x1000
	DeviceOffset  = 0x2000
	NotifyOffset  = 0x3000
	msixTableOff  = 0x4000
	msixPBAOff    = 0x6000
	barSize       = 0x8000
	structSize    = 0x1000
	NotifyMultip  = 4 // notify_off_multiplier: queue i's doorbell is at NotifyOffset + 4*i
	maxQueues     = structSize / NotifyMultip
	commonCfgSize = 0x38
)

// Common configuration registers (virtio 1.2, 4.1.4.3).
const (
	regDeviceFeatureSelect = 0x00
	regDeviceFeature       = 0x04
	regDriverFeatureSelect = 0x08
	regDriverFeature       = 0x0C
	regConfigMSIXVector    = 0x10
	regNumQueues           = 0x12
	regDeviceStatus        = 0x14
	regConfigGeneration    = 0x15
	regQueueSelect         = 0x16
	regQueueSize           = 0x18
	regQueueMSIXVector     = 0x1A
	regQueueEnable         = 0x1C
	regQueueNotifyOff      = 0x1E
	regQueueDesc           = 0x20
	regQueueDriver         = 0x28
	regQueueDevice         = 0x30
)

// NoVector is VIRTIO_MSI_NO_VECTOR (4.1.5.1.2).
const NoVector = 0xFFFF

// ISR status bits (4.1.4.5).
const (
	isrQueue  = 1
	isrConfig = 2
)

// PCI IDs (4.1.2): modern devices are 0x1040 + the device type.
const (
	VendorID       = 0x1AF4
	deviceIDBase   = 0x1040
	revisionModern = 1
)

// class is the PCI class code each device type announces.
func class(typ uint16) uint32 {
	switch typ {
	case virtio.TypeNet:
		return 0x020000 // network controller, Ethernet
	case virtio.TypeBlock:
		return 0x018000 // mass storage, other
	}
	return 0xFF0000 // unassigned class
}

// queueState is one queue as the driver configures it.
type queueState struct {
	size               uint16
	enabled            bool
	desc, driver, used uint64
	vector             atomic.Uint32 // MSI-X vector, or NoVector
	kick               chan struct{}
}

// Transport is one virtio device on PCI.
type Transport struct {
	dev  virtio.Device
	fn   *pci.Function
	mem  *memory.Memory
	name string
	log  io.Writer

	offered uint64
	sizes   []uint16

	mu          sync.Mutex // the driver's configuration
	devFeatSel  uint32
	drvFeatSel  uint32
	drvFeatures uint64
	queueSel    uint16
	queues      []*queueState
	active      bool
	// activation is what the active device works with; quiesced says
	// its work is stopped for a pause (state.go), to go on with Resume.
	activation   virtio.Activation
	quiesced     bool
	configVector atomic.Uint32
	status       atomic.Uint32 // device_status; NEEDS_RESET is set from device goroutines
	generation   atomic.Uint32

	isrMu sync.Mutex // isr and the INTx level together
	isr   uint8

	irqErrors atomic.Uint64 // interrupts that could not be sent
	broken    atomic.Uint64 // times the driver broke the rules
}

// Config is what a Transport is built from.
type Config struct {
	Device virtio.Device
	Mem    *memory.Memory
	// Name is how log lines name the device ("virtio-blk 0").
	Name string
	// Log gets one line each time the driver breaks the rules.
	Log io.Writer
}

// New builds the device's PCI function; add Function() to a bus.
func New(c Config) (*Transport, error) {
	sizes := c.Device.QueueSizes()
	if len(sizes) == 0 || len(sizes) > maxQueues {
		return nil, fmt.Errorf("virtio-pci %s: %d queues: give 1 to %d", c.Name, len(sizes), maxQueues)
	}
	t := &Transport{dev: c.Device, mem: c.Mem, name: c.Name, log: c.Log, offered: c.Device.Features() | virtio.FeatureVersion1, sizes: sizes}
	if t.log == nil {
		t.log = io.Discard
	}
	var bells []pci.Doorbell
	for i, s := range sizes {
		if s == 0 || s > queue.MaxSize || s&(s-1) != 0 {
			return nil, fmt.Errorf("virtio-pci %s: queue %d of %d entries: give a power of two up to %d", c.Name, i, s, queue.MaxSize)
		}
		q := &queueState{kick: make(chan struct{}, 1)}
		t.queues = append(t.queues, q)
		bells = append(bells, pci.Doorbell{Offset: NotifyOffset + NotifyMultip*uint64(i), Size: 2, Ring: q.ring})
	}
	t.resetLocked()
	typ := c.Device.Type()
	fn, err := pci.NewFunction(pci.Config{
		VendorID: VendorID, DeviceID: deviceIDBase + typ,
		SubsysVendor: VendorID, SubsysID: deviceIDBase + typ,
		Class: class(typ), Revision: revisionModern,
		BARs: [pci.BARCount]pci.BAR{
			BAR: {Kind: pci.BARMem64, Size: barSize, Dev: barRegs{t}, Doorbells: bells},
		},
		Pin:        pci.PinA,
		MSIX:       &pci.MSIXConfig{Vectors: len(sizes) + 1, BAR: BAR, TableOffset: msixTableOff, PBAOffset: msixPBAOff},
		VendorCaps: capabilities(len(sizes)),
	})
	if err != nil {
		return nil, fmt.Errorf("virtio-pci %s: %w", c.Name, err)
	}
	t.fn = fn
	return t, nil
}

// capabilities are the four virtio_pci_cap structures (4.1.4): after the
// ID, next and length bytes, cfg_type, bar, id, two bytes of padding,
// le32 offset and le32 length; the notification one adds le32
// notify_off_multiplier.
func capabilities(queues int) [][]byte {
	mk := func(typ byte, off, length uint32, extra ...uint32) []byte {
		b := make([]byte, 13, 13+4*len(extra))
		b[0], b[1] = typ, BAR
		binary.LittleEndian.PutUint32(b[5:], off)
		binary.LittleEndian.PutUint32(b[9:], length)
		for _, e := range extra {
			b = binary.LittleEndian.AppendUint32(b, e)
		}
		return b
	}
	return [][]byte{
		mk(capCommon, CommonOffset, commonCfgSize),
		mk(capISR, ISROffset, 1),
		mk(capDevice, DeviceOffset, structSize),
		mk(capNotify, NotifyOffset, uint32(NotifyMultip*queues), NotifyMultip),
	}
}

// Function is the device's PCI function.
func (t *Transport) Function() *pci.Function { return t.fn }

// Device is the virtio device behind the transport.
func (t *Transport) Device() virtio.Device { return t.dev }

// Status is the device status register.
func (t *Transport) Status() uint8 { return uint8(t.status.Load()) }

// Broken counts the times the driver broke the rules.
func (t *Transport) Broken() uint64 { return t.broken.Load() }

// IRQErrors counts interrupts that could not be sent.
func (t *Transport) IRQErrors() uint64 { return t.irqErrors.Load() }

func (q *queueState) ring() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// resetLocked puts the driver-visible state back to the device's reset
// values (4.1.4.3.2: queue sizes at their maximum, vectors NO_VECTOR).
func (t *Transport) resetLocked() {
	t.devFeatSel, t.drvFeatSel, t.drvFeatures, t.queueSel = 0, 0, 0, 0
	for i, q := range t.queues {
		q.size, q.enabled, q.desc, q.driver, q.used = t.sizes[i], false, 0, 0, 0
		q.vector.Store(NoVector)
		select {
		case <-q.kick:
		default:
		}
	}
	t.configVector.Store(NoVector)
	t.status.Store(0)
}

// reset stops the device and returns to the reset state; mu is held.
func (t *Transport) reset() {
	if t.active {
		t.dev.Reset()
		t.active, t.quiesced, t.activation = false, false, virtio.Activation{}
	}
	t.resetLocked()
	t.isrMu.Lock()
	t.isr = 0
	t.setINTx(false)
	t.isrMu.Unlock()
}

// Close stops the device's work.
func (t *Transport) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active {
		t.dev.Reset()
		t.active, t.quiesced = false, false
	}
}

// barRegs routes the BAR's accesses to the structures.
type barRegs struct{ t *Transport }

func (r barRegs) Read(off uint64, p []byte) {
	for i := range p {
		p[i] = 0
	}
	switch {
	case off < CommonOffset+commonCfgSize:
		r.t.readCommon(off, p)
	case off >= ISROffset && off < ISROffset+structSize:
		if off == ISROffset {
			p[0] = r.t.readISR()
		}
	case off >= DeviceOffset && off < DeviceOffset+structSize:
		r.t.dev.ReadConfig(off-DeviceOffset, p)
	}
}

func (r barRegs) Write(off uint64, p []byte) {
	switch {
	case off < CommonOffset+commonCfgSize:
		r.t.writeCommon(off, p)
	case off >= DeviceOffset && off < DeviceOffset+structSize:
		r.t.dev.WriteConfig(off-DeviceOffset, p)
	case off >= NotifyOffset && off < NotifyOffset+structSize:
		// A notification that did not come through the doorbell (another
		// width, or a host without ioeventfds).
		if i := (off - NotifyOffset) / NotifyMultip; i < uint64(len(r.t.queues)) {
			r.t.queues[i].ring()
		}
	}
}

// readISR returns and clears the ISR status, which deasserts INTx
// (4.1.4.5).
func (t *Transport) readISR() uint8 {
	t.isrMu.Lock()
	defer t.isrMu.Unlock()
	v := t.isr
	t.isr = 0
	if v != 0 {
		t.setINTx(false)
	}
	return v
}

// setINTx drives the pin; isrMu is held.
func (t *Transport) setINTx(on bool) {
	if err := t.fn.SetINTx(on); err != nil {
		t.irqErrors.Add(1)
	}
}

// interrupt sends a notification on vector vec, or through the ISR and
// INTx while MSI-X is off (4.1.5.3, 4.1.5.4).
func (t *Transport) interrupt(vec uint32, isrBit uint8) {
	if t.fn.MSIXEnabled() {
		if vec == NoVector {
			return
		}
		if _, err := t.fn.SendMSIX(int(vec)); err != nil {
			t.irqErrors.Add(1)
		}
		return
	}
	t.isrMu.Lock()
	t.isr |= isrBit
	t.setINTx(true)
	t.isrMu.Unlock()
}

func (t *Transport) queueInterrupt(i int) {
	t.interrupt(t.queues[i].vector.Load(), isrQueue)
}

func (t *Transport) configInterrupt() {
	t.interrupt(t.configVector.Load(), isrConfig)
}

// ConfigChanged tells the driver the device configuration changed.
func (t *Transport) ConfigChanged() {
	t.generation.Add(1)
	t.configInterrupt()
}

// deviceBroken sets DEVICE_NEEDS_RESET and tells the driver (2.1.2).
func (t *Transport) deviceBroken(err error) {
	t.broken.Add(1)
	for {
		old := t.status.Load()
		if old&virtio.StatusNeedsReset != 0 {
			return // said once
		}
		if t.status.CompareAndSwap(old, old|virtio.StatusNeedsReset) {
			break
		}
	}
	fmt.Fprintf(t.log, "govmm: %s: %v; the device needs a reset\n", t.name, err)
	t.ConfigChanged()
}

// selected is the queue queue_select names, or nil; mu is held.
func (t *Transport) selected() *queueState {
	if int(t.queueSel) < len(t.queues) {
		return t.queues[t.queueSel]
	}
	return nil
}

// readCommon reads the common configuration structure.
func (t *Transport) readCommon(off uint64, p []byte) {
	var regs [commonCfgSize]byte
	le := binary.LittleEndian
	t.mu.Lock()
	switch t.devFeatSel {
	case 0:
		le.PutUint32(regs[regDeviceFeature:], uint32(t.offered))
	case 1:
		le.PutUint32(regs[regDeviceFeature:], uint32(t.offered>>32))
	}
	le.PutUint32(regs[regDeviceFeatureSelect:], t.devFeatSel)
	le.PutUint32(regs[regDriverFeatureSelect:], t.drvFeatSel)
	if t.drvFeatSel < 2 {
		le.PutUint32(regs[regDriverFeature:], uint32(t.drvFeatures>>(32*t.drvFeatSel)))
	}
	le.PutUint16(regs[regConfigMSIXVector:], uint16(t.configVector.Load()))
	le.PutUint16(regs[regNumQueues:], uint16(len(t.queues)))
	regs[regDeviceStatus] = uint8(t.status.Load())
	regs[regConfigGeneration] = uint8(t.generation.Load())
	le.PutUint16(regs[regQueueSelect:], t.queueSel)
	if q := t.selected(); q != nil {
		le.PutUint16(regs[regQueueSize:], q.size)
		le.PutUint16(regs[regQueueMSIXVector:], uint16(q.vector.Load()))
		if q.enabled {
			le.PutUint16(regs[regQueueEnable:], 1)
		}
		le.PutUint16(regs[regQueueNotifyOff:], t.queueSel)
		le.PutUint64(regs[regQueueDesc:], q.desc)
		le.PutUint64(regs[regQueueDriver:], q.driver)
		le.PutUint64(regs[regQueueDevice:], q.used)
	}
	t.mu.Unlock()
	copy(p, regs[off:])
}

// writeCommon applies a write to the common configuration structure.
// Each field takes writes of its own width; the 64-bit queue addresses
// also take their two 32-bit halves (4.1.3.1). Others are dropped.
func (t *Transport) writeCommon(off uint64, p []byte) {
	var b [8]byte
	copy(b[:], p)
	v := binary.LittleEndian.Uint64(b[:])
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.selected()
	configurable := q != nil && !q.enabled && t.status.Load()&virtio.StatusDriverOK == 0
	switch {
	case off == regDeviceFeatureSelect && n == 4:
		t.devFeatSel = uint32(v)
	case off == regDriverFeatureSelect && n == 4:
		t.drvFeatSel = uint32(v)
	case off == regDriverFeature && n == 4:
		if t.drvFeatSel < 2 && t.status.Load()&virtio.StatusFeaturesOK == 0 {
			shift := 32 * t.drvFeatSel
			t.drvFeatures = t.drvFeatures&^(0xFFFF_FFFF<<shift) | uint64(uint32(v))<<shift
		}
	case off == regConfigMSIXVector && n == 2:
		t.configVector.Store(t.checkVector(uint16(v)))
	case off == regDeviceStatus && n == 1:
		t.setStatus(uint8(v))
	case off == regQueueSelect && n == 2:
		t.queueSel = uint16(v)
	case off == regQueueSize && n == 2:
		if configurable {
			q.size = uint16(v)
		}
	case off == regQueueMSIXVector && n == 2:
		if q != nil {
			q.vector.Store(t.checkVector(uint16(v)))
		}
	case off == regQueueEnable && n == 2:
		if configurable && v == 1 {
			q.enabled = true
		}
	case off >= regQueueDesc && off < commonCfgSize && (n == 8 && off%8 == 0 || n == 4 && off%4 == 0):
		if !configurable {
			return
		}
		field := &q.desc
		switch (off - regQueueDesc) / 8 {
		case 1:
			field = &q.driver
		case 2:
			field = &q.used
		}
		switch {
		case n == 8:
			*field = v
		case off%8 == 0:
			*field = *field&^0xFFFF_FFFF | v&0xFFFF_FFFF
		default:
			*field = *field&0xFFFF_FFFF | v<<32
		}
	}
}

// checkVector returns v if the function has that MSI-X vector, else
// NO_VECTOR, which the driver reads back as the mapping's failure
// (4.1.5.1.2).
func (t *Transport) checkVector(v uint16) uint32 {
	if int(v) >= len(t.queues)+1 {
		return NoVector
	}
	return uint32(v)
}

// setStatus is a write of device_status (2.1, 3.1.1); mu is held.
func (t *Transport) setStatus(v uint8) {
	if v == 0 {
		t.reset()
		return
	}
	old := uint8(t.status.Load())
	if v&virtio.StatusFeaturesOK != 0 && old&virtio.StatusFeaturesOK == 0 {
		if err := t.checkFeatures(); err != nil {
			fmt.Fprintf(t.log, "govmm: %s: features refused: %v\n", t.name, err)
			v &^= virtio.StatusFeaturesOK
		}
	}
	v |= old & virtio.StatusNeedsReset
	t.status.Store(uint32(v))
	if v&virtio.StatusDriverOK != 0 && old&virtio.StatusDriverOK == 0 && v&virtio.StatusFeaturesOK != 0 && v&virtio.StatusFailed == 0 {
		if err := t.activate(); err != nil {
			t.deviceBroken(err) // takes no lock of the transport's
		}
	}
}

// checkFeatures says whether the driver's features are a subset of the
// device's that includes VERSION_1 (2.2.1, 6.1).
func (t *Transport) checkFeatures() error {
	if extra := t.drvFeatures &^ t.offered; extra != 0 {
		return fmt.Errorf("the driver accepted feature bits %#x the device did not offer", extra)
	}
	if t.drvFeatures&virtio.FeatureVersion1 == 0 {
		return errors.New("the driver did not accept VIRTIO_F_VERSION_1; govmm's devices are modern only (legacy drivers are not supported)")
	}
	return nil
}

// activate builds the enabled queues and starts the device; mu is held.
func (t *Transport) activate() error {
	a, err := t.buildQueues()
	if err != nil {
		return err
	}
	if err := t.dev.Activate(a); err != nil {
		return err
	}
	t.active, t.activation = true, a
	return nil
}

// buildQueues checks the enabled queues against guest RAM and builds
// them, at ring indices 0, into an Activation; mu is held.
func (t *Transport) buildQueues() (virtio.Activation, error) {
	a := virtio.Activation{
		Mem:           t.mem,
		Features:      t.drvFeatures,
		Queues:        make([]*queue.Queue, len(t.queues)),
		Kicks:         make([]<-chan struct{}, len(t.queues)),
		Interrupt:     t.queueInterrupt,
		ConfigChanged: t.ConfigChanged,
		Broken:        t.deviceBroken,
	}
	for i, q := range t.queues {
		a.Kicks[i] = q.kick
		if !q.enabled {
			continue
		}
		if q.size > t.sizes[i] {
			return a, fmt.Errorf("%w: queue %d of size %d, larger than the device's %d (4.1.4.3.2)", queue.ErrDriver, i, q.size, t.sizes[i])
		}
		vq, err := queue.New(t.mem, queue.Config{
			Size: q.size, Desc: memory.GuestAddr(q.desc), Avail: memory.GuestAddr(q.driver), Used: memory.GuestAddr(q.used),
			Indirect: t.drvFeatures&queue.FeatureIndirectDesc != 0,
			EventIdx: t.drvFeatures&queue.FeatureEventIdx != 0,
		})
		if err != nil {
			return a, fmt.Errorf("queue %d: %w", i, err)
		}
		a.Queues[i] = vq
	}
	return a, nil
}
