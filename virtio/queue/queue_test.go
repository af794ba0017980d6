package queue_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

const (
	ramSize  = 64 << 10
	ringBase = 0x1000
	dataBase = 0x4000
)

func newDriver(t *testing.T, size uint16, indirect, eventIdx bool) (*queuetest.Driver, *queue.Queue) {
	t.Helper()
	mem := queuetest.NewMemory(ramSize)
	cfg := queuetest.Layout(size, ringBase, 0)
	cfg.Indirect, cfg.EventIdx = indirect, eventIdx
	q, err := queue.New(mem, cfg)
	if err != nil {
		t.Fatalf("queue.New(%+v) = %v", cfg, err)
	}
	return queuetest.New(mem, cfg, dataBase, ramSize-dataBase), q
}

func TestPopPush(t *testing.T) {
	for _, indirect := range []bool{false, true} {
		d, q := newDriver(t, 8, true, false)
		bufs := []queuetest.Buf{{Data: []byte("head")}, {Data: []byte("er")}, {Len: 5, Write: true}, {Len: 1, Write: true}}
		var head uint16
		var addrs []memory.GuestAddr
		if indirect {
			head, addrs = d.IndirectChain(bufs...)
		} else {
			head, addrs = d.Chain(bufs...)
		}
		d.Publish(head)
		var c queue.Chain
		ok, err := q.Pop(&c)
		if !ok || err != nil {
			t.Fatalf("indirect=%v: Pop() = %v, %v, want a chain", indirect, ok, err)
		}
		if c.Head != head || len(c.Readable) != 2 || len(c.Writable) != 2 || string(c.Readable[0]) != "head" || string(c.Readable[1]) != "er" || c.WritableLen() != 6 {
			t.Fatalf("indirect=%v: Pop() chain = head %d, %q, %d writable bytes; want head %d, [head er], 6", indirect, c.Head, c.Readable, c.WritableLen(), head)
		}
		copy(c.Writable[0], "hello")
		c.Writable[1][0] = '!'
		if err := q.Push(c.Head, 6); err != nil {
			t.Fatal(err)
		}
		if got := d.TakeUsed(); len(got) != 1 || got[0] != (queuetest.Used{ID: uint32(head), Len: 6}) {
			t.Errorf("indirect=%v: used ring = %+v, want [{%d 6}]", indirect, got, head)
		}
		if got := string(d.Read(addrs[2], 5)) + string(d.Read(addrs[3], 1)); got != "hello!" {
			t.Errorf("indirect=%v: guest buffers hold %q, want \"hello!\"", indirect, got)
		}
		if ok, err := q.Pop(&c); ok || err != nil {
			t.Errorf("indirect=%v: second Pop() = %v, %v, want nothing", indirect, ok, err)
		}
	}
}

// TestHostileChains: every rule a driver can break ends in an error that
// wraps ErrDriver and names the problem; nothing outside RAM is touched
// (RAM is a byte slice here: a stray access would panic).
func TestHostileChains(t *testing.T) {
	const size = 4
	tests := []struct {
		name     string
		indirect bool
		setup    func(d *queuetest.Driver) uint16 // returns the head to publish
		want     string
	}{
		{"head past the queue", true, func(d *queuetest.Driver) uint16 { return size }, "past the queue"},
		{"next past the queue", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: size})
			return 0
		}, "past its table"},
		{"loop of two", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 1})
			d.PutDesc(d.Cfg.Desc, 1, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 0})
			return 0
		}, "a loop"},
		{"self loop", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 2, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 2})
			return 2
		}, "a loop"},
		{"buffer past RAM", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: ramSize - 4, Len: 8})
			return 0
		}, "not backed by RAM"},
		{"buffer wraps the address space", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: ^memory.GuestAddr(0) - 3, Len: 0x100, Flags: queue.DescFWrite})
			return 0
		}, "wraps"},
		{"length past RAM", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: dataBase, Len: 0xFFFF_FFFF})
			return 0
		}, "not backed by RAM"},
		{"readable after writable", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFWrite | queue.DescFNext, Next: 1})
			d.PutDesc(d.Cfg.Desc, 1, queuetest.Desc{Addr: dataBase, Len: 1})
			return 0
		}, "readable buffer after a device-writable"},
		{"indirect not negotiated", false, func(d *queuetest.Driver) uint16 {
			h, _ := d.IndirectChain(queuetest.Buf{Data: []byte("x")})
			return h
		}, "INDIRECT_DESC was not negotiated"},
		{"indirect inside indirect", true, func(d *queuetest.Driver) uint16 {
			inner := d.Alloc(16)
			d.PutDesc(inner, 0, queuetest.Desc{Addr: dataBase, Len: 1})
			outer := d.Alloc(16)
			d.PutDesc(outer, 0, queuetest.Desc{Addr: inner, Len: 16, Flags: queue.DescFIndirect})
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: outer, Len: 16, Flags: queue.DescFIndirect})
			return 0
		}, "indirect table holds an indirect"},
		{"indirect with next", true, func(d *queuetest.Driver) uint16 {
			tab := d.Alloc(16)
			d.PutDesc(tab, 0, queuetest.Desc{Addr: dataBase, Len: 1})
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: tab, Len: 16, Flags: queue.DescFIndirect | queue.DescFNext, Next: 1})
			return 0
		}, "indirect and has NEXT"},
		{"indirect table of odd length", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: d.Alloc(32), Len: 20, Flags: queue.DescFIndirect})
			return 0
		}, "multiple of 16"},
		{"empty indirect table", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: d.Alloc(16), Flags: queue.DescFIndirect})
			return 0
		}, "multiple of 16"},
		{"indirect table past RAM", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: ramSize - 16, Len: 64, Flags: queue.DescFIndirect})
			return 0
		}, "not backed by RAM"},
		{"loop inside an indirect table", true, func(d *queuetest.Driver) uint16 {
			tab := d.Alloc(32)
			d.PutDesc(tab, 0, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 1})
			d.PutDesc(tab, 1, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 0})
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: tab, Len: 32, Flags: queue.DescFIndirect})
			return 0
		}, "a loop"},
		{"next past the indirect table", true, func(d *queuetest.Driver) uint16 {
			tab := d.Alloc(32)
			d.PutDesc(tab, 0, queuetest.Desc{Addr: dataBase, Len: 1, Flags: queue.DescFNext, Next: 2})
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: tab, Len: 32, Flags: queue.DescFIndirect})
			return 0
		}, "past its table"},
		{"misaligned indirect table", true, func(d *queuetest.Driver) uint16 {
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: d.Alloc(48) + 8, Len: 32, Flags: queue.DescFIndirect})
			return 0
		}, "aligned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, q := newDriver(t, size, tt.indirect, false)
			d.Publish(tt.setup(d))
			var c queue.Chain
			ok, err := q.Pop(&c)
			if ok || !errors.Is(err, queue.ErrDriver) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Pop() = %v, %v; want an ErrDriver error containing %q", ok, err, tt.want)
			}
		})
	}
}

func TestAvailIndexTooFar(t *testing.T) {
	d, q := newDriver(t, 4, false, false)
	d.SetAvailIdx(5)
	var c queue.Chain
	if ok, err := q.Pop(&c); ok || !errors.Is(err, queue.ErrDriver) {
		t.Errorf("Pop() with 5 entries in a queue of 4 = %v, %v, want an ErrDriver error", ok, err)
	}
}

func TestNewRejects(t *testing.T) {
	mem := queuetest.NewMemory(ramSize)
	good := queuetest.Layout(8, ringBase, 0)
	tests := []struct {
		name string
		edit func(c *queue.Config)
		want string
	}{
		{"size 0", func(c *queue.Config) { c.Size = 0 }, "power of two"},
		{"size 6", func(c *queue.Config) { c.Size = 6 }, "power of two"},
		{"misaligned descriptors", func(c *queue.Config) { c.Desc += 8 }, "16-byte aligned"},
		{"misaligned available ring", func(c *queue.Config) { c.Avail++ }, "2-byte aligned"},
		{"misaligned used ring", func(c *queue.Config) { c.Used += 2 }, "4-byte aligned"},
		{"used ring past RAM", func(c *queue.Config) { c.Used = ramSize - 16 }, "not backed by RAM"},
		{"descriptors wrap", func(c *queue.Config) { c.Desc = ^memory.GuestAddr(0) &^ 15 }, "wraps"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		if _, err := queue.New(mem, c); !errors.Is(err, queue.ErrDriver) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) = %v, want an ErrDriver error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestNeedInterrupt: without EVENT_IDX the driver's NO_INTERRUPT flag
// decides; with it, used_event does (virtio 1.2, 2.7.7.2).
func TestNeedInterrupt(t *testing.T) {
	pushN := func(d *queuetest.Driver, q *queue.Queue, n int) {
		for i := 0; i < n; i++ {
			h, _ := d.Chain(queuetest.Buf{Len: 1, Write: true})
			d.Publish(h)
			var c queue.Chain
			if ok, err := q.Pop(&c); !ok || err != nil {
				t.Fatalf("Pop() = %v, %v", ok, err)
			}
			if err := q.Push(c.Head, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	d, q := newDriver(t, 8, false, false)
	if got, _ := q.NeedInterrupt(); got {
		t.Errorf("NeedInterrupt() with nothing used = true, want false")
	}
	pushN(d, q, 1)
	if got, err := q.NeedInterrupt(); !got || err != nil {
		t.Errorf("NeedInterrupt() = %v, %v, want true", got, err)
	}
	d.SetAvailFlags(queue.AvailFNoInterrupt)
	pushN(d, q, 1)
	if got, _ := q.NeedInterrupt(); got {
		t.Errorf("NeedInterrupt() with VIRTQ_AVAIL_F_NO_INTERRUPT = true, want false")
	}

	d, q = newDriver(t, 8, false, true)
	d.SetUsedEvent(2) // interrupt when the used index passes 2, i.e. reaches 3
	tests := []struct {
		push int
		want bool
	}{{1, false}, {1, false}, {1, true}, {1, false}, {0, false}}
	for i, tt := range tests {
		pushN(d, q, tt.push)
		if got, err := q.NeedInterrupt(); got != tt.want || err != nil {
			t.Errorf("step %d: NeedInterrupt() = %v, %v, want %v", i, got, err, tt.want)
		}
	}
	d.SetUsedEvent(4)
	pushN(d, q, 3) // the index goes 4 -> 7, over used_event+1 = 5
	if got, _ := q.NeedInterrupt(); !got {
		t.Errorf("NeedInterrupt() after stepping over used_event = false, want true")
	}
}

// TestNotifySuppression: the device's side of 2.7.10.
func TestNotifySuppression(t *testing.T) {
	d, q := newDriver(t, 8, false, false)
	if err := q.DisableNotify(); err != nil || d.UsedFlags() != queue.UsedFNoNotify {
		t.Errorf("DisableNotify() = %v, used flags %d, want VIRTQ_USED_F_NO_NOTIFY", err, d.UsedFlags())
	}
	h, _ := d.Chain(queuetest.Buf{Data: []byte("x")})
	d.Publish(h)
	if more, err := q.EnableNotify(); !more || err != nil || d.UsedFlags() != 0 {
		t.Errorf("EnableNotify() with a chain waiting = %v, %v (flags %d), want true and flags 0", more, err, d.UsedFlags())
	}

	d, q = newDriver(t, 8, false, true)
	var c queue.Chain
	for i := 0; i < 3; i++ {
		h, _ := d.Chain(queuetest.Buf{Data: []byte("x")})
		d.Publish(h)
		if ok, err := q.Pop(&c); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if more, err := q.EnableNotify(); more || err != nil || d.AvailEvent() != 3 {
		t.Errorf("EnableNotify() = %v, %v, avail_event %d; want false and avail_event 3", more, err, d.AvailEvent())
	}
}

// TestIndices: a queue rebuilt at saved indices goes on where it was.
func TestIndices(t *testing.T) {
	d, q := newDriver(t, 4, false, false)
	for i := 0; i < 6; i++ { // wraps the ring
		h, _ := d.Chain(queuetest.Buf{Data: []byte{byte(i)}})
		d.Publish(h)
		var c queue.Chain
		if ok, err := q.Pop(&c); !ok || err != nil || !bytes.Equal(c.Readable[0], []byte{byte(i)}) {
			t.Fatalf("Pop() %d = %v, %v, %q", i, ok, err, c.Readable)
		}
		if err := q.Push(c.Head, 0); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			a, u := q.Indices()
			q2, err := queue.New(d.Mem, q.Config())
			if err != nil {
				t.Fatal(err)
			}
			q2.SetIndices(a, u)
			q = q2
		}
	}
	if a, u := q.Indices(); a != 6 || u != 6 {
		t.Errorf("Indices() = %d, %d, want 6, 6", a, u)
	}
	if n := len(d.TakeUsed()); n != 6 {
		t.Errorf("driver saw %d used entries, want 6", n)
	}
}

// TestReturnMarksDirty: what the device wrote into a chain, and the used
// element, count as the VMM's writes for a snapshot or migration.
func TestReturnMarksDirty(t *testing.T) {
	d, q := newDriver(t, 8, false, false)
	d.Mem.TrackWrites(true)
	h, addrs := d.Chain(queuetest.Buf{Data: []byte("req")}, queuetest.Buf{Len: 8, Write: true})
	d.Publish(h)
	b := d.Mem.NewBitmap()
	d.Mem.TakeWrites(b) // forget the driver's own writes
	b.Clear()
	var c queue.Chain
	if ok, err := q.Pop(&c); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := q.Return(&c, 8); err != nil {
		t.Fatal(err)
	}
	d.Mem.TakeWrites(b)
	for _, a := range []memory.GuestAddr{addrs[1], d.Cfg.Used} {
		i, _ := d.Mem.PageIndex(a)
		if !b.Get(i) {
			t.Errorf("page of %v not marked written after Return", a)
		}
	}
	if i, _ := d.Mem.PageIndex(dataBase + 0x3000); b.Get(i) {
		t.Errorf("a page the device did not write is marked")
	}
}
