package pci

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/govmm/govmm/devices"
)

// fakeIRQs records what the devices on a bus do with their interrupts.
type fakeIRQs struct {
	mu      sync.Mutex
	levels  map[uint32]bool
	vectors []*fakeVector
	bells   map[bellKey]*fakeBell
	noBells bool // answer Doorbell with ErrNoDoorbells
}

type bellKey struct {
	space devices.Space
	addr  uint64
}

func newFakeIRQs() *fakeIRQs {
	return &fakeIRQs{levels: map[uint32]bool{}, bells: map[bellKey]*fakeBell{}}
}

func (r *fakeIRQs) Line(gsi uint32) devices.IRQLine {
	return devices.IRQFunc(func(high bool) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.levels[gsi] = high
		return nil
	})
}

func (r *fakeIRQs) level(gsi uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.levels[gsi]
}

func (r *fakeIRQs) NewMSIVector() (devices.MSIVector, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := &fakeVector{}
	r.vectors = append(r.vectors, v)
	return v, nil
}

func (r *fakeIRQs) Doorbell(space devices.Space, addr uint64, size int, ring func()) (devices.Doorbell, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noBells {
		return nil, devices.ErrNoDoorbells
	}
	k := bellKey{space, addr}
	if _, ok := r.bells[k]; ok {
		return nil, fmt.Errorf("doorbell at %v %#x registered twice", space, addr)
	}
	b := &fakeBell{r: r, k: k, ring: ring, size: size}
	r.bells[k] = b
	return b, nil
}

func (r *fakeIRQs) bell(space devices.Space, addr uint64) *fakeBell {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bells[bellKey{space, addr}]
}

type fakeBell struct {
	r    *fakeIRQs
	k    bellKey
	size int
	ring func()
}

func (b *fakeBell) Close() error {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	delete(b.r.bells, b.k)
	return nil
}

// fakeVector records the messages it was given and sent.
type fakeVector struct {
	mu     sync.Mutex
	msg    devices.MSIMessage
	sets   int
	sent   []devices.MSIMessage
	closed bool
}

func (v *fakeVector) SetMessage(m devices.MSIMessage) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.msg = m
	v.sets++
	return nil
}

func (v *fakeVector) Trigger() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sent = append(v.sent, v.msg)
	return nil
}

func (v *fakeVector) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = true
	return nil
}

func (v *fakeVector) sentCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.sent)
}

// Test windows, like boot/layout.go's but small.
var (
	testMMIO32 = Window{Start: 0xC000_0000, Size: 0x1000_0000}
	testMMIO64 = Window{Start: 0x1_0000_0000, Size: 0x1_0000_0000}
	testIO     = Window{Start: 0xC000, Size: 0x4000}
)

func testINTxGSI(slot, pin int) uint32 { return uint32(16 + (slot+pin)%4) }

// testBus is a bus with the host bridge and a test device in slot 1.
type testBus struct {
	*Bus
	io, mmio *devices.Bus
	irqs     *fakeIRQs
	dev      *TestDev
	slot     int
}

func newTestBus(t testing.TB) *testBus {
	t.Helper()
	tb := &testBus{io: devices.NewBus(devices.PortIO), mmio: devices.NewBus(devices.MMIO), irqs: newFakeIRQs()}
	var err error
	tb.Bus, err = NewBus(BusConfig{IO: tb.io, MMIO: tb.mmio, Interrupts: tb.irqs, MMIO32: testMMIO32, MMIO64: testMMIO64, IOPorts: testIO, INTxGSI: testINTxGSI})
	if err != nil {
		t.Fatal(err)
	}
	if tb.dev, err = NewTestDev(); err != nil {
		t.Fatal(err)
	}
	if tb.slot, err = tb.Add(tb.dev.Function()); err != nil {
		t.Fatal(err)
	}
	return tb
}

// Configuration accesses through mechanism #1, as a guest's in/out do.
func (tb *testBus) cf8Read(slot int, reg uint64, n int) uint32 {
	ports := tb.ConfigPorts()
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, ConfigEnable|uint32(slot)<<configDeviceShift|uint32(reg)&configRegisterMask)
	ports.Write(0, addr)
	p := make([]byte, n)
	ports.Read(configDataOffset+reg&3, p)
	return le(p)
}

func (tb *testBus) cf8Write(slot int, reg uint64, n int, v uint32) {
	ports := tb.ConfigPorts()
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, ConfigEnable|uint32(slot)<<configDeviceShift|uint32(reg)&configRegisterMask)
	ports.Write(0, addr)
	ports.Write(configDataOffset+reg&3, leBytes(v, n))
}

// Configuration accesses through ECAM.
func (tb *testBus) ecamRead(slot int, reg uint64, n int) uint32 {
	p := make([]byte, n)
	tb.ECAM().Read(uint64(slot)<<ECAMDeviceShift|reg, p)
	return le(p)
}

func (tb *testBus) ecamWrite(slot int, reg uint64, n int, v uint32) {
	tb.ECAM().Write(uint64(slot)<<ECAMDeviceShift|reg, leBytes(v, n))
}

func le(p []byte) uint32 {
	var v uint32
	for i := len(p) - 1; i >= 0; i-- {
		v = v<<8 | uint32(p[i])
	}
	return v
}

func leBytes(v uint32, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(v >> (8 * i))
	}
	return p
}
