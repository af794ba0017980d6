package pci

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// fakeIRQs records INTx levels, sends MSI-X messages to a channel and
// keeps doorbells' ring functions, as a test of the transport needs.
type fakeIRQs struct {
	mu    sync.Mutex
	level map[uint32]bool
	bells map[uint64]func()
	sent  chan devices.MSIMessage
	high  chan uint32 // a line went from low to high
}

func newFakeIRQs() *fakeIRQs {
	return &fakeIRQs{level: map[uint32]bool{}, bells: map[uint64]func(){}, sent: make(chan devices.MSIMessage, 256), high: make(chan uint32, 256)}
}

func (f *fakeIRQs) Line(gsi uint32) devices.IRQLine {
	return devices.IRQFunc(func(high bool) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if high && !f.level[gsi] {
			f.high <- gsi
		}
		f.level[gsi] = high
		return nil
	})
}

func (f *fakeIRQs) intx(gsi uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.level[gsi]
}

func (f *fakeIRQs) NewMSIVector() (devices.MSIVector, error) { return &fakeVector{f: f}, nil }

func (f *fakeIRQs) Doorbell(space devices.Space, addr uint64, size int, ring func()) (devices.Doorbell, error) {
	if size != 2 {
		return nil, fmt.Errorf("doorbell of %d bytes, want 2", size)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bells[addr] = ring
	return fakeBell{f, addr}, nil
}

type fakeBell struct {
	f    *fakeIRQs
	addr uint64
}

func (b fakeBell) Close() error {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	delete(b.f.bells, b.addr)
	return nil
}

type fakeVector struct {
	f   *fakeIRQs
	msg devices.MSIMessage
}

func (v *fakeVector) SetMessage(m devices.MSIMessage) error { v.msg = m; return nil }
func (v *fakeVector) Trigger() error                        { v.f.sent <- v.msg; return nil }
func (v *fakeVector) Close() error                          { return nil }

// rig is a PCI bus with one virtio device on it, and the guest RAM its
// queues live in, driven as a guest's driver would.
type rig struct {
	t    testing.TB
	mmio *devices.Bus
	bus  *pci.Bus
	irqs *fakeIRQs
	tr   *Transport
	slot int
	bar  uint64
	mem  *memory.Memory
	msix uint64 // MSI-X capability offset
}

const (
	rigRAM  = 1 << 20
	rigGSI  = 20
	rigLog  = "rig"
	timeout = 10 * time.Second
)

func newRig(t *testing.T, dev virtio.Device, log *syncBuffer) *rig {
	t.Helper()
	return newRigOn(t, dev, log, queuetest.NewMemory(rigRAM))
}

// newRigOn is newRig over guest RAM mem (a restore's, shared with the
// rig saved from).
func newRigOn(t testing.TB, dev virtio.Device, log *syncBuffer, mem *memory.Memory) *rig {
	t.Helper()
	r := &rig{t: t, mmio: devices.NewBus(devices.MMIO), irqs: newFakeIRQs(), mem: mem}
	var err error
	r.bus, err = pci.NewBus(pci.BusConfig{
		IO: devices.NewBus(devices.PortIO), MMIO: r.mmio, Interrupts: r.irqs,
		MMIO32:  pci.Window{Start: 0xC000_0000, Size: 0x1000_0000},
		IOPorts: pci.Window{Start: 0xC000, Size: 0x4000},
		INTxGSI: func(slot, pin int) uint32 { return rigGSI },
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Device: dev, Mem: r.mem, Name: "virtio-test"}
	if log != nil {
		cfg.Log = log
	}
	r.tr, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.slot, err = r.bus.Add(r.tr.Function()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.tr.Close()
		if err := r.bus.Close(); err != nil {
			t.Error(err)
		}
	})
	r.bar = r.tr.Function().BARAddress(BAR)
	r.cfgWrite(pci.RegCommand, 2, pci.CmdMemory|pci.CmdBusMaster)
	for p := r.cfgRead(pci.RegCapPtr, 1); p != 0; p = r.cfgRead(p+1, 1) {
		if r.cfgRead(p, 1) == pci.CapIDMSIX {
			r.msix = p
		}
	}
	return r
}

func (r *rig) cfgRead(reg uint64, n int) uint64 {
	p := make([]byte, n)
	r.bus.ECAM().Read(uint64(r.slot)<<pci.ECAMDeviceShift|reg, p)
	return le(p)
}

func (r *rig) cfgWrite(reg uint64, n int, v uint64) {
	r.bus.ECAM().Write(uint64(r.slot)<<pci.ECAMDeviceShift|reg, leBytes(v, n))
}

func (r *rig) read(off uint64, n int) uint64 {
	p := make([]byte, n)
	if !r.mmio.Read(r.bar+off, p) {
		r.t.Fatalf("read of BAR offset %#x: nothing decodes it", off)
	}
	return le(p)
}

func (r *rig) write(off uint64, n int, v uint64) {
	if !r.mmio.Write(r.bar+off, leBytes(v, n)) {
		r.t.Fatalf("write of BAR offset %#x: nothing decodes it", off)
	}
}

func le(p []byte) uint64 {
	var b [8]byte
	copy(b[:], p)
	return binary.LittleEndian.Uint64(b[:])
}

func leBytes(v uint64, n int) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:n]
}

// negotiate runs the driver's side of 3.1.1 up to FEATURES_OK and returns
// the status read back.
func (r *rig) negotiate(features uint64) uint8 {
	r.write(regDeviceStatus, 1, 0)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver)
	r.write(regDriverFeatureSelect, 4, 0)
	r.write(regDriverFeature, 4, features&0xFFFF_FFFF)
	r.write(regDriverFeatureSelect, 4, 1)
	r.write(regDriverFeature, 4, features>>32)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK)
	return uint8(r.read(regDeviceStatus, 1))
}

// offered reads the device's feature bits.
func (r *rig) offered() uint64 {
	r.write(regDeviceFeatureSelect, 4, 0)
	lo := r.read(regDeviceFeature, 4)
	r.write(regDeviceFeatureSelect, 4, 1)
	return lo | r.read(regDeviceFeature, 4)<<32
}

// setupQueue lays queue i out at base and enables it with MSI-X vector
// vec, and returns its driver.
func (r *rig) setupQueue(i int, size uint16, base memory.GuestAddr, vec uint16) *queuetest.Driver {
	cfg := queuetest.Layout(size, base, 0)
	r.write(regQueueSelect, 2, uint64(i))
	r.write(regQueueSize, 2, uint64(size))
	r.write(regQueueMSIXVector, 2, uint64(vec))
	// The 64-bit addresses in two halves, as Linux writes them.
	for _, f := range []struct {
		reg  uint64
		addr memory.GuestAddr
	}{{regQueueDesc, cfg.Desc}, {regQueueDriver, cfg.Avail}, {regQueueDevice, cfg.Used}} {
		r.write(f.reg, 4, uint64(f.addr)&0xFFFF_FFFF)
		r.write(f.reg+4, 4, uint64(f.addr)>>32)
	}
	r.write(regQueueEnable, 2, 1)
	return queuetest.New(r.mem, cfg, base+0x4000, 0x8000)
}

// enableMSIX points vector v at data 0x40+v and turns MSI-X on.
func (r *rig) enableMSIX(vectors int) {
	for v := 0; v < vectors; v++ {
		e := msixTableOff + uint64(16*v)
		r.write(e, 4, 0xFEE0_0000)
		r.write(e+4, 4, 0)
		r.write(e+8, 4, uint64(0x40+v))
		r.write(e+12, 4, 0)
	}
	r.cfgWrite(r.msix+2, 2, pci.MSIXEnable)
}

// kick rings queue i's doorbell as KVM's ioeventfd would.
func (r *rig) kick(i int) {
	r.irqs.mu.Lock()
	ring := r.irqs.bells[r.bar+NotifyOffset+NotifyMultip*uint64(i)]
	r.irqs.mu.Unlock()
	if ring == nil {
		r.t.Fatalf("no doorbell registered for queue %d", i)
	}
	ring()
}

// waitMSI waits for an MSI with data.
func (r *rig) waitMSI(data uint32) {
	r.t.Helper()
	select {
	case m := <-r.irqs.sent:
		if m.Data != data {
			r.t.Fatalf("MSI with data %#x, want %#x", m.Data, data)
		}
	case <-time.After(timeout):
		r.t.Fatalf("no MSI with data %#x within %v", data, timeout)
	}
}

// syncBuffer is a log shared with device goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

var _ = queue.ErrDriver
