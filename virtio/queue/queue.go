// Package queue is the split virtqueue (virtio 1.2, 2.7), the device's
// side: it takes descriptor chains the driver made available and returns
// them through the used ring. It knows nothing of KVM or of a transport:
// guest memory is a *memory.Memory, which a test builds over a plain byte
// slice.
//
// Every address and length the driver gives is checked against guest RAM
// before it is touched; chains that loop, run longer than the queue or
// their indirect table, nest indirect tables, or put a device-readable
// buffer after a device-writable one are refused with an error that wraps
// ErrDriver. The device that gets one stops using the queue and sets
// DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2); the VMM goes on.
//
// The ring indices are read and written with memory's atomic accessors:
// the available index is loaded before the entries it publishes, the used
// element is written before the used index that publishes it, and a full
// fence separates publishing the used index from reading the driver's
// suppression fields (2.7.7, 2.7.10, 2.7.13).
package queue

import (
	"errors"
	"fmt"
	"math"

	"github.com/govmm/govmm/memory"
)

// Feature bits the queue implements (virtio 1.2, 6 "Reserved Feature
// Bits"); a transport offers them and tells the queue what was accepted.
const (
	FeatureIndirectDesc = 1 << 28 // VIRTIO_F_INDIRECT_DESC
	FeatureEventIdx     = 1 << 29 // VIRTIO_F_EVENT_IDX
)

// MaxSize is the largest split queue (virtio 1.2, 2.7: "Queue Size ...
// maximum 32768").
const MaxSize = 32768

// Descriptor layout (virtio 1.2, 2.7.5): le64 addr, le32 len, le16
// flags, le16 next.
const (
	DescSize = 16

	DescFNext     = 1 // VIRTQ_DESC_F_NEXT: the chain continues at next
	DescFWrite    = 2 // VIRTQ_DESC_F_WRITE: device-writable
	DescFIndirect = 4 // VIRTQ_DESC_F_INDIRECT: addr/len is a table of descriptors

	// AvailFNoInterrupt (2.7.6) asks the device not to interrupt; only
	// without EVENT_IDX.
	AvailFNoInterrupt = 1
	// UsedFNoNotify (2.7.8) tells the driver not to notify; only without
	// EVENT_IDX.
	UsedFNoNotify = 1

	usedElemSize = 8 // le32 id, le32 len
)

// Alignment of each part (virtio 1.2, 2.7, the table "Virtqueue Part
// Alignment").
const (
	DescAlign  = 16
	AvailAlign = 2
	UsedAlign  = 4
)

// ErrDriver is wrapped by every error that means the driver broke the
// rules: the device must stop using the queue and ask for a reset.
var ErrDriver = errors.New("virtqueue: the driver broke the virtio rules")

// Config is a queue as the driver set it up.
type Config struct {
	Size  uint16           // a power of two, 1 to MaxSize
	Desc  memory.GuestAddr // descriptor table
	Avail memory.GuestAddr // driver area: the available ring
	Used  memory.GuestAddr // device area: the used ring
	// Indirect and EventIdx say whether VIRTIO_F_INDIRECT_DESC and
	// VIRTIO_F_EVENT_IDX were negotiated.
	Indirect, EventIdx bool
}

// DescBytes, AvailBytes and UsedBytes are the sizes of a queue's three
// parts, event fields included (virtio 1.2, 2.7).
func DescBytes(size uint16) uint64  { return DescSize * uint64(size) }
func AvailBytes(size uint16) uint64 { return 6 + 2*uint64(size) }
func UsedBytes(size uint16) uint64  { return 6 + usedElemSize*uint64(size) }

// Queue is the device's view of one split virtqueue. It is not safe for
// concurrent use: one goroutine serves a queue.
type Queue struct {
	mem *memory.Memory
	cfg Config

	nextAvail  uint16 // the next available ring entry to take
	nextUsed   uint16 // the used index after the last Push
	signalled  uint16 // the used index when NeedInterrupt last answered
	descBuf    [DescSize]byte
	notifyOff  bool // UsedFNoNotify is set (without EVENT_IDX)
	totalLimit uint64
}

func driverErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDriver}, args...)...)
}

// New checks c against mem and returns the queue, at ring indices 0.
func New(mem *memory.Memory, c Config) (*Queue, error) {
	if c.Size == 0 || c.Size > MaxSize || c.Size&(c.Size-1) != 0 {
		return nil, driverErr("queue size %d is not a power of two from 1 to %d (2.7)", c.Size, MaxSize)
	}
	parts := []struct {
		name  string
		addr  memory.GuestAddr
		align uint64
		size  uint64
	}{
		{"descriptor table", c.Desc, DescAlign, DescBytes(c.Size)},
		{"available ring", c.Avail, AvailAlign, AvailBytes(c.Size)},
		{"used ring", c.Used, UsedAlign, UsedBytes(c.Size)},
	}
	for _, p := range parts {
		if uint64(p.addr)%p.align != 0 {
			return nil, driverErr("%s at %v is not %d-byte aligned (2.7)", p.name, p.addr, p.align)
		}
		if _, err := mem.Slice(p.addr, p.size); err != nil {
			return nil, driverErr("%s of %d bytes: %v", p.name, p.size, err)
		}
	}
	return &Queue{mem: mem, cfg: c, totalLimit: math.MaxUint32}, nil
}

// Config is what the queue was built from.
func (q *Queue) Config() Config { return q.cfg }

// Indices returns the next available entry the device will take and the
// used index it last published, for a device's saved state.
func (q *Queue) Indices() (nextAvail, nextUsed uint16) { return q.nextAvail, q.nextUsed }

// SetIndices puts the queue where a saved state left it.
func (q *Queue) SetIndices(nextAvail, nextUsed uint16) {
	q.nextAvail, q.nextUsed, q.signalled = nextAvail, nextUsed, nextUsed
}

// Unpop gives back the last n chains Pop took and the device has not
// returned, so that Pop takes them again: a device stopped while it held
// chains it had not used (a frame half placed when the VMM pauses) puts
// them back rather than losing the driver's buffers. Nothing of theirs
// reached the used ring, so the driver cannot tell (virtio 1.2, 2.7.13:
// a buffer is the device's until it is used).
func (q *Queue) Unpop(n uint16) { q.nextAvail -= n }

// Chain is one descriptor chain taken from the available ring: its head
// (the id to give back to Push) and its buffers as host memory, in order.
// Pop refills a Chain, reusing its slices.
type Chain struct {
	Head     uint16
	Readable [][]byte // device-readable buffers (the driver's request)
	Writable [][]byte // device-writable buffers (for the reply)

	writableAt []memory.GuestAddr // where each Writable buffer lies
}

// ReadableLen and WritableLen are the chain's byte counts.
func (c *Chain) ReadableLen() uint64 { return total(c.Readable) }
func (c *Chain) WritableLen() uint64 { return total(c.Writable) }

func total(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}

// availIdx loads the driver's available index (2.7.6: le16 flags, le16
// idx, le16 ring[size], le16 used_event).
func (q *Queue) availIdx() (uint16, error) {
	return q.mem.LoadUint16(q.cfg.Avail + 2)
}

// Pending says how many chains the driver has made available that Pop has
// not taken. A driver that claims more than the queue holds broke the
// rules.
func (q *Queue) Pending() (uint16, error) {
	idx, err := q.availIdx()
	if err != nil {
		return 0, driverErr("available index: %v", err)
	}
	n := idx - q.nextAvail
	if n > q.cfg.Size {
		return 0, driverErr("available index %d is %d entries past the device's %d, more than the queue's %d (2.7.13)", idx, n, q.nextAvail, q.cfg.Size)
	}
	return n, nil
}

// Pop takes the next available chain into c and reports whether there
// was one. An error wrapping ErrDriver means the chain broke the rules;
// the queue must not be used again until a reset.
func (q *Queue) Pop(c *Chain) (bool, error) {
	n, err := q.Pending()
	if err != nil || n == 0 {
		return false, err
	}
	slot := q.cfg.Avail + 4 + memory.GuestAddr(2*uint64(q.nextAvail%q.cfg.Size))
	head, err := q.mem.LoadUint16(slot)
	if err != nil {
		return false, driverErr("available ring entry: %v", err)
	}
	if err := q.walk(head, c); err != nil {
		return false, err
	}
	q.nextAvail++
	return true, nil
}

// desc is one decoded descriptor.
type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func (q *Queue) readDesc(table memory.GuestAddr, i uint16) (desc, error) {
	if err := q.mem.ReadAt(q.descBuf[:], table+memory.GuestAddr(DescSize*uint64(i))); err != nil {
		return desc{}, driverErr("descriptor %d: %v", i, err)
	}
	b := q.descBuf[:]
	return desc{
		addr:  uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56,
		len:   uint32(b[8]) | uint32(b[9])<<8 | uint32(b[10])<<16 | uint32(b[11])<<24,
		flags: uint16(b[12]) | uint16(b[13])<<8,
		next:  uint16(b[14]) | uint16(b[15])<<8,
	}, nil
}

// walk follows the chain at head (virtio 1.2, 2.7.5 and 2.7.5.3).
func (q *Queue) walk(head uint16, c *Chain) error {
	c.Head = head
	c.Readable, c.Writable, c.writableAt = c.Readable[:0], c.Writable[:0], c.writableAt[:0]
	if head >= q.cfg.Size {
		return driverErr("chain head %d is past the queue's %d descriptors (2.7.5)", head, q.cfg.Size)
	}
	table, tableLen := q.cfg.Desc, uint32(q.cfg.Size)
	indirect := false
	var seen uint32 // descriptors of the current table visited: more than it has is a loop
	var bytes uint64
	for i := head; ; {
		seen++
		if seen > tableLen {
			return driverErr("chain at head %d visits more descriptors than its table's %d: a loop (2.7.5)", head, tableLen)
		}
		d, err := q.readDesc(table, i)
		if err != nil {
			return err
		}
		if d.flags&DescFIndirect != 0 {
			switch {
			case !q.cfg.Indirect:
				return driverErr("descriptor %d is indirect, and VIRTIO_F_INDIRECT_DESC was not negotiated (2.7.5.3)", i)
			case indirect:
				return driverErr("an indirect table holds an indirect descriptor (2.7.5.3.1)")
			case d.flags&DescFNext != 0:
				return driverErr("descriptor %d is indirect and has NEXT set (2.7.5.3.1)", i)
			case d.len == 0 || d.len%DescSize != 0:
				return driverErr("indirect table of %d bytes is not a non-zero multiple of %d (2.7.5.3.1)", d.len, DescSize)
			case d.len/DescSize > MaxSize:
				return driverErr("indirect table of %d descriptors is longer than %d", d.len/DescSize, MaxSize)
			}
			if _, err := q.mem.Slice(memory.GuestAddr(d.addr), uint64(d.len)); err != nil {
				return driverErr("indirect table: %v", err)
			}
			if uint64(d.addr)%DescAlign != 0 {
				return driverErr("indirect table at %#x is not %d-byte aligned", d.addr, DescAlign)
			}
			table, tableLen, indirect, seen, i = memory.GuestAddr(d.addr), d.len/DescSize, true, 0, 0
			continue
		}
		if d.len > 0 {
			b, err := q.mem.Slice(memory.GuestAddr(d.addr), uint64(d.len))
			if err != nil {
				return driverErr("buffer of descriptor %d: %v", i, err)
			}
			bytes += uint64(d.len)
			if bytes > q.totalLimit {
				return driverErr("chain at head %d holds more than %d bytes", head, q.totalLimit)
			}
			if d.flags&DescFWrite != 0 {
				c.Writable = append(c.Writable, b)
				c.writableAt = append(c.writableAt, memory.GuestAddr(d.addr))
			} else {
				if len(c.Writable) > 0 {
					return driverErr("chain at head %d has a device-readable buffer after a device-writable one (2.7.4.2)", head)
				}
				c.Readable = append(c.Readable, b)
			}
		}
		if d.flags&DescFNext == 0 {
			return nil
		}
		if uint32(d.next) >= tableLen {
			return driverErr("descriptor %d's next, %d, is past its table's %d entries (2.7.5)", i, d.next, tableLen)
		}
		i = d.next
	}
}

// Push returns chain head to the driver with written bytes written to its
// device-writable buffers (2.7.8, 2.7.14): the used element first, then
// the used index that publishes it.
func (q *Queue) Push(head uint16, written uint32) error {
	elem := q.cfg.Used + 4 + memory.GuestAddr(usedElemSize*uint64(q.nextUsed%q.cfg.Size))
	b, err := q.mem.Slice(elem, usedElemSize)
	if err != nil {
		return driverErr("used ring entry: %v", err)
	}
	put32(b[0:], uint32(head))
	put32(b[4:], written)
	q.mem.MarkDirty(elem, usedElemSize)
	q.nextUsed++
	if err := q.mem.StoreUint16(q.cfg.Used+2, q.nextUsed); err != nil {
		return driverErr("used index: %v", err)
	}
	return nil
}

// Return gives chain c back with written bytes written to its writable
// buffers, as Push, and first records those bytes as written by the VMM
// (memory.MarkDirty), for a snapshot or migration under way.
func (q *Queue) Return(c *Chain, written uint32) error {
	left := uint64(written)
	for i, b := range c.Writable {
		if left == 0 {
			break
		}
		n := min(left, uint64(len(b)))
		q.mem.MarkDirty(c.writableAt[i], n)
		left -= n
	}
	return q.Push(c.Head, written)
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// NeedInterrupt says whether the driver wants a used buffer notification
// for what Push published since the last call (virtio 1.2, 2.7.7.2):
// with EVENT_IDX, when the used index passed used_event; without, unless
// the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
func (q *Queue) NeedInterrupt() (bool, error) {
	memory.Fence() // the used index is visible before the driver's fields are read
	old, now := q.signalled, q.nextUsed
	if old == now {
		return false, nil
	}
	q.signalled = now
	if q.cfg.EventIdx {
		ev, err := q.mem.LoadUint16(q.cfg.Avail + 4 + memory.GuestAddr(2*uint64(q.cfg.Size)))
		if err != nil {
			return false, driverErr("used_event: %v", err)
		}
		// vring_need_event: did the index step over used_event + 1?
		return now-ev-1 < now-old, nil
	}
	flags, err := q.mem.LoadUint16(q.cfg.Avail)
	if err != nil {
		return false, driverErr("available ring flags: %v", err)
	}
	return flags&AvailFNoInterrupt == 0, nil
}

// DisableNotify asks the driver not to notify the device while it works
// through the ring (2.7.10): without EVENT_IDX it sets
// VIRTQ_USED_F_NO_NOTIFY; with it nothing is needed, since avail_event
// stays where EnableNotify left it.
func (q *Queue) DisableNotify() error {
	if q.cfg.EventIdx || q.notifyOff {
		return nil
	}
	q.notifyOff = true
	return q.setUsedFlags(UsedFNoNotify)
}

// EnableNotify asks for a notification when the driver adds a chain, and
// then looks again: it reports whether chains came in the meantime, in
// which case the caller goes on popping instead of waiting (the race
// 2.7.10 describes).
func (q *Queue) EnableNotify() (pending bool, err error) {
	if q.cfg.EventIdx {
		at := q.cfg.Used + 4 + memory.GuestAddr(usedElemSize*uint64(q.cfg.Size))
		if err := q.mem.StoreUint16(at, q.nextAvail); err != nil {
			return false, driverErr("avail_event: %v", err)
		}
	} else if q.notifyOff {
		q.notifyOff = false
		if err := q.setUsedFlags(0); err != nil {
			return false, err
		}
	}
	memory.Fence()
	n, err := q.Pending()
	return n > 0, err
}

func (q *Queue) setUsedFlags(f uint16) error {
	if err := q.mem.StoreUint16(q.cfg.Used, f); err != nil {
		return driverErr("used ring flags: %v", err)
	}
	return nil
}
