package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// fakeBackend hands frames through channels.
type fakeBackend struct {
	vnet bool
	in   chan []byte // frames to receive
	out  chan []byte // frames sent
	offl uint64
}

func newFake(vnet bool) *fakeBackend {
	return &fakeBackend{vnet: vnet, in: make(chan []byte, 8), out: make(chan []byte, 8)}
}

func (f *fakeBackend) VnetHdr() bool { return f.vnet }
func (f *fakeBackend) ReadPacket(p []byte) (int, error) {
	b, ok := <-f.in
	if !ok {
		return 0, errors.New("closed")
	}
	return copy(p, b), nil
}
func (f *fakeBackend) WritePacket(iov [][]byte) error {
	var b []byte
	for _, v := range iov {
		b = append(b, v...)
	}
	f.out <- b
	return nil
}
func (f *fakeBackend) SetOffloads(features uint64) error { f.offl = features; return nil }
func (f *fakeBackend) Close() error                      { close(f.in); return nil }

type rig struct {
	t      *testing.T
	dev    *Device
	be     *fakeBackend
	rx, tx *queuetest.Driver
	kicks  [2]chan struct{}
	irq    chan int
	act    virtio.Activation
}

func newRig(t *testing.T, vnet bool, features uint64) *rig {
	t.Helper()
	r := &rig{t: t, be: newFake(vnet), irq: make(chan int, 64)}
	var err error
	if r.dev, err = New(r.be, net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	mem := queuetest.NewMemory(1 << 20)
	var qs []*queue.Queue
	var kicks []<-chan struct{}
	for i, base := range []uint64{0x1000, 0x8000} {
		cfg := queuetest.Layout(16, memAddr(base), 0)
		q, err := queue.New(mem, cfg)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
		r.kicks[i] = make(chan struct{}, 1)
		kicks = append(kicks, r.kicks[i])
		d := queuetest.New(mem, cfg, memAddr(0x20000+uint64(i)*0x40000), 0x40000)
		if i == 0 {
			r.rx = d
		} else {
			r.tx = d
		}
	}
	r.act = virtio.Activation{Mem: mem, Features: features, Queues: qs, Kicks: kicks,
		Interrupt: func(i int) { r.irq <- i }, ConfigChanged: func() {}, Broken: func(err error) { t.Errorf("Broken(%v)", err) }}
	if err := r.dev.Activate(r.act); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.dev.Reset)
	return r
}

func (r *rig) kick(i int) {
	select {
	case r.kicks[i] <- struct{}{}:
	default:
	}
}

func (r *rig) waitIRQ(want int) {
	r.t.Helper()
	select {
	case i := <-r.irq:
		if i != want {
			r.t.Fatalf("interrupt for queue %d, want %d", i, want)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no interrupt for queue %d within 10 s", want)
	}
}

func frame(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 3)
	}
	return b
}

func TestConfig(t *testing.T) {
	d, err := New(newFake(false), net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 8)
	d.ReadConfig(0, p)
	if !bytes.Equal(p, []byte{0x52, 0x54, 0, 1, 2, 3, statusLinkUp, 0}) {
		t.Errorf("config = % x, want the MAC and LINK_UP", p)
	}
	if d.Features()&OffloadFeatures != 0 {
		t.Errorf("offloads offered over a backend without virtio_net_hdr")
	}
	if d2, _ := New(newFake(true), net.HardwareAddr{2, 0, 0, 0, 0, 1}); d2.Features()&OffloadFeatures != OffloadFeatures {
		t.Errorf("offloads not offered over a backend with virtio_net_hdr")
	}
}

// TestTransmit: the header is stripped for a plain backend, kept for one
// that takes virtio_net_hdr.
func TestTransmit(t *testing.T) {
	for _, vnet := range []bool{false, true} {
		r := newRig(t, vnet, virtio.FeatureVersion1)
		hdr := make([]byte, HeaderSize)
		hdr[0] = 1 // NEEDS_CSUM, as a guest with CSUM would send
		f := frame(100)
		h, _ := r.tx.Chain(queuetest.Buf{Data: hdr}, queuetest.Buf{Data: f[:40]}, queuetest.Buf{Data: f[40:]})
		r.tx.Publish(h)
		r.kick(txQueue)
		r.waitIRQ(txQueue)
		got := <-r.be.out
		want := f
		if vnet {
			want = append(append([]byte{}, hdr...), f...)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vnet=%v: the backend got %d bytes, want %d (the frame%s)", vnet, len(got), len(want), map[bool]string{true: " with its header"}[vnet])
		}
	}
}

// TestReceiveMerged: a 3000-byte frame spans three 1200-byte buffers
// with MRG_RXBUF, num_buffers saying 3 (5.1.6.4).
func TestReceiveMerged(t *testing.T) {
	r := newRig(t, false, virtio.FeatureVersion1|FeatureMrgRxbuf)
	var addrs []uint64
	for i := 0; i < 4; i++ {
		h, a := r.rx.Chain(queuetest.Buf{Len: 1200, Write: true})
		r.rx.Publish(h)
		addrs = append(addrs, uint64(a[0]))
	}
	r.kick(rxQueue)
	f := frame(3000)
	r.be.in <- f
	r.waitIRQ(rxQueue)
	used := r.rx.TakeUsed()
	if len(used) != 3 || used[0].Len != 1200 || used[1].Len != 1200 || used[2].Len != HeaderSize+3000-2400 {
		t.Fatalf("used = %+v, want three chains of 1200, 1200 and %d bytes", used, HeaderSize+3000-2400)
	}
	var got []byte
	for i, u := range used {
		got = append(got, r.rx.Read(memAddr(addrs[i]), int(u.Len))...)
	}
	if nb := binary.LittleEndian.Uint16(got[numBuffersOff:]); nb != 3 || !bytes.Equal(got[HeaderSize:], f) {
		t.Errorf("num_buffers %d, frame equal %v; want 3, true", nb, bytes.Equal(got[HeaderSize:], f))
	}
}

// TestReceiveWaitsForBuffers: a frame that comes before any receive
// buffer waits for the driver to add one.
func TestReceiveWaitsForBuffers(t *testing.T) {
	r := newRig(t, false, virtio.FeatureVersion1)
	r.be.in <- frame(60)
	h, a := r.rx.Chain(queuetest.Buf{Len: 1526, Write: true})
	r.rx.Publish(h)
	r.kick(rxQueue)
	r.waitIRQ(rxQueue)
	used := r.rx.TakeUsed()
	if len(used) != 1 || used[0].Len != HeaderSize+60 || !bytes.Equal(r.rx.Read(a[0]+HeaderSize, 60), frame(60)) {
		t.Errorf("used = %+v, want one chain with the 60-byte frame", used)
	}
	// Without MRG_RXBUF, a frame larger than the buffer is dropped.
	h, _ = r.rx.Chain(queuetest.Buf{Len: 100, Write: true})
	r.rx.Publish(h)
	r.kick(rxQueue)
	r.be.in <- frame(500)
	r.waitIRQ(rxQueue)
	if used := r.rx.TakeUsed(); len(used) != 1 || used[0].Len != 0 || r.dev.RxDropped.Load() != 1 {
		t.Errorf("used = %+v, dropped %d; want one empty chain and one drop", used, r.dev.RxDropped.Load())
	}
}

// TestReceiveAcrossPause: stopped (a pause, Reset) while a frame waits
// for more receive buffers, the card gives back the chain it took and
// keeps the frame, and a frame read meanwhile waits too: activated again
// on the same queues, it places both, in order, losing none.
func TestReceiveAcrossPause(t *testing.T) {
	r := newRig(t, false, virtio.FeatureVersion1|FeatureMrgRxbuf)
	h, _ := r.rx.Chain(queuetest.Buf{Len: 1200, Write: true})
	r.rx.Publish(h)
	r.kick(rxQueue)
	r.be.in <- frame(3000)
	time.Sleep(20 * time.Millisecond) // likely placing it, waiting for more buffers
	r.dev.Reset()
	r.be.in <- frame(60) // read while stopped
	if used := r.rx.TakeUsed(); len(used) != 0 {
		t.Fatalf("a stopped card used %+v", used)
	}
	for i := 0; i < 3; i++ {
		h, _ := r.rx.Chain(queuetest.Buf{Len: 1200, Write: true})
		r.rx.Publish(h)
	}
	if err := r.dev.Activate(r.act); err != nil {
		t.Fatal(err)
	}
	r.kick(rxQueue)
	var used []queuetest.Used
	for len(used) < 4 {
		r.waitIRQ(rxQueue)
		used = append(used, r.rx.TakeUsed()...)
	}
	want := []uint32{1200, 1200, HeaderSize + 3000 - 2400, HeaderSize + 60}
	for i, u := range used {
		if i >= len(want) || u.Len != want[i] {
			t.Fatalf("used = %+v, want chains of %v bytes: the 3000-byte frame, then the 60-byte one", used, want)
		}
	}
	if used[0].ID != uint32(h) {
		t.Errorf("the first chain used is %d, want %d, the one given back at the stop", used[0].ID, h)
	}
	if r.dev.RxFrames.Load() != 2 || r.dev.RxDropped.Load() != 0 {
		t.Errorf("%d frames received, %d dropped; want 2, 0", r.dev.RxFrames.Load(), r.dev.RxDropped.Load())
	}
}
