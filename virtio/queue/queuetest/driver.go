// Package queuetest is the driver's side of a split virtqueue, for tests
// of devices and of package queue: it lays a queue out in guest memory,
// writes descriptors (direct, indirect, or any bytes a hostile driver
// would), makes chains available and reads the used ring back.
package queuetest

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio/queue"
)

// Driver drives one queue whose parts lie at fixed addresses of Mem.
type Driver struct {
	Mem *memory.Memory
	Cfg queue.Config

	nextDesc  uint16
	availIdx  uint16
	usedSeen  uint16
	dataStart memory.GuestAddr
	dataNext  memory.GuestAddr
	dataLimit memory.GuestAddr
}

// Layout places a queue of size at base: descriptors, available ring,
// used ring, then a data area up to base+span for buffers.
func Layout(size uint16, base memory.GuestAddr, span uint64) queue.Config {
	desc := base
	avail := desc + memory.GuestAddr(queue.DescBytes(size))
	used := (avail + memory.GuestAddr(queue.AvailBytes(size)) + 3) &^ 3
	return queue.Config{Size: size, Desc: desc, Avail: avail, Used: used}
}

// NewMemory is guest RAM of size bytes at address 0, over a byte slice.
func NewMemory(size int) *memory.Memory {
	m, err := memory.FromRegions(memory.Region{Start: 0, Host: make([]byte, size)})
	if err != nil {
		panic(err) // a fixed, valid layout
	}
	return m
}

// New returns a driver for cfg, whose buffers Alloc takes from [data,
// data+dataSize).
func New(mem *memory.Memory, cfg queue.Config, data memory.GuestAddr, dataSize uint64) *Driver {
	return &Driver{Mem: mem, Cfg: cfg, dataStart: data, dataNext: data, dataLimit: data + memory.GuestAddr(dataSize)}
}

// Alloc reserves n bytes (16-byte aligned) of the data area and returns
// their address.
func (d *Driver) Alloc(n uint64) memory.GuestAddr {
	a := (d.dataNext + 15) &^ 15
	if a+memory.GuestAddr(n) > d.dataLimit {
		panic(fmt.Sprintf("queuetest: data area full (%#x more bytes)", n))
	}
	d.dataNext = a + memory.GuestAddr(n)
	return a
}

// ResetData frees the whole data area for reuse (the chains that used
// it must be back from the device).
func (d *Driver) ResetData() { d.dataNext = d.dataStart }

// Desc is a descriptor to write.
type Desc struct {
	Addr  memory.GuestAddr
	Len   uint32
	Flags uint16
	Next  uint16
}

// PutDesc writes descriptor d at index i of the table at table.
func (d *Driver) PutDesc(table memory.GuestAddr, i uint16, x Desc) {
	var b [queue.DescSize]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(x.Addr))
	binary.LittleEndian.PutUint32(b[8:], x.Len)
	binary.LittleEndian.PutUint16(b[12:], x.Flags)
	binary.LittleEndian.PutUint16(b[14:], x.Next)
	d.must(d.Mem.WriteAt(b[:], table+memory.GuestAddr(queue.DescSize*uint64(i))))
}

// Buf is one buffer of a chain: its bytes for the device to read, or,
// when Write is set, Len bytes for the device to write.
type Buf struct {
	Data  []byte
	Len   uint32
	Write bool
}

// Chain writes bufs as a chain of direct descriptors, with data in the
// data area, and returns its head and the buffers' addresses.
func (d *Driver) Chain(bufs ...Buf) (head uint16, addrs []memory.GuestAddr) {
	head = d.nextDesc % d.Cfg.Size
	for i, b := range bufs {
		idx := d.nextDesc % d.Cfg.Size
		d.nextDesc++
		n := b.Len
		if !b.Write {
			n = uint32(len(b.Data))
		}
		a := d.Alloc(uint64(n))
		if !b.Write {
			d.must(d.Mem.WriteAt(b.Data, a))
		}
		addrs = append(addrs, a)
		x := Desc{Addr: a, Len: n}
		if b.Write {
			x.Flags |= queue.DescFWrite
		}
		if i < len(bufs)-1 {
			x.Flags |= queue.DescFNext
			x.Next = d.nextDesc % d.Cfg.Size
		}
		d.PutDesc(d.Cfg.Desc, idx, x)
	}
	return head, addrs
}

// IndirectChain writes bufs into an indirect table and one descriptor
// pointing at it; it returns the head.
func (d *Driver) IndirectChain(bufs ...Buf) (head uint16, addrs []memory.GuestAddr) {
	table := d.Alloc(queue.DescSize * uint64(len(bufs)))
	for i, b := range bufs {
		n := b.Len
		if !b.Write {
			n = uint32(len(b.Data))
		}
		a := d.Alloc(uint64(n))
		if !b.Write {
			d.must(d.Mem.WriteAt(b.Data, a))
		}
		addrs = append(addrs, a)
		x := Desc{Addr: a, Len: n}
		if b.Write {
			x.Flags |= queue.DescFWrite
		}
		if i < len(bufs)-1 {
			x.Flags |= queue.DescFNext
			x.Next = uint16(i + 1)
		}
		d.PutDesc(table, uint16(i), x)
	}
	head = d.nextDesc % d.Cfg.Size
	d.nextDesc++
	d.PutDesc(d.Cfg.Desc, head, Desc{Addr: table, Len: uint32(queue.DescSize * len(bufs)), Flags: queue.DescFIndirect})
	return head, addrs
}

// Publish puts head in the next available ring entry and bumps the
// available index.
func (d *Driver) Publish(head uint16) {
	slot := d.Cfg.Avail + 4 + memory.GuestAddr(2*uint64(d.availIdx%d.Cfg.Size))
	d.must(d.Mem.StoreUint16(slot, head))
	d.availIdx++
	d.must(d.Mem.StoreUint16(d.Cfg.Avail+2, d.availIdx))
}

// SetAvailIdx writes the available index as a hostile driver might.
func (d *Driver) SetAvailIdx(v uint16) {
	d.availIdx = v
	d.must(d.Mem.StoreUint16(d.Cfg.Avail+2, v))
}

// SetAvailFlags writes the available ring's flags.
func (d *Driver) SetAvailFlags(v uint16) { d.must(d.Mem.StoreUint16(d.Cfg.Avail, v)) }

// SetUsedEvent writes used_event (EVENT_IDX).
func (d *Driver) SetUsedEvent(v uint16) {
	d.must(d.Mem.StoreUint16(d.Cfg.Avail+4+memory.GuestAddr(2*uint64(d.Cfg.Size)), v))
}

// AvailEvent reads avail_event, which the device writes (EVENT_IDX).
func (d *Driver) AvailEvent() uint16 {
	v, err := d.Mem.LoadUint16(d.Cfg.Used + 4 + memory.GuestAddr(8*uint64(d.Cfg.Size)))
	d.must(err)
	return v
}

// UsedFlags reads the used ring's flags.
func (d *Driver) UsedFlags() uint16 {
	v, err := d.Mem.LoadUint16(d.Cfg.Used)
	d.must(err)
	return v
}

// Used is one used ring element.
type Used struct {
	ID  uint32
	Len uint32
}

// TakeUsed returns the used elements published since the last call.
func (d *Driver) TakeUsed() []Used {
	idx, err := d.Mem.LoadUint16(d.Cfg.Used + 2)
	d.must(err)
	var out []Used
	for ; d.usedSeen != idx; d.usedSeen++ {
		var b [8]byte
		d.must(d.Mem.ReadAt(b[:], d.Cfg.Used+4+memory.GuestAddr(8*uint64(d.usedSeen%d.Cfg.Size))))
		out = append(out, Used{ID: binary.LittleEndian.Uint32(b[:]), Len: binary.LittleEndian.Uint32(b[4:])})
	}
	return out
}

// Read returns n guest bytes at a.
func (d *Driver) Read(a memory.GuestAddr, n int) []byte {
	b := make([]byte, n)
	d.must(d.Mem.ReadAt(b, a))
	return b
}

func (d *Driver) must(err error) {
	if err != nil {
		panic("queuetest: " + err.Error()) // the test laid memory out wrong
	}
}
