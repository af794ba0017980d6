package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/govmm/govmm/devices"
)

// MSI-X (PCI Local Bus 3.0, 6.8.2). The capability in configuration space:
//
//	+0  capability ID 0x11, next pointer
//	+2  message control: bits 10:0 table size - 1 (read-only),
//	    bit 14 function mask, bit 15 MSI-X enable
//	+4  table offset | BIR (the BAR holding it, bits 2:0)
//	+8  PBA offset | BIR
//
// The table, in a memory BAR, has 16 bytes per vector: message address
// (low, high), message data, vector control (bit 0: masked; set at reset).
// The pending-bit array (PBA) has one bit per vector, set when the vector
// fired while masked and cleared when the message is sent on unmasking.
const (
	msixCapSize   = 12
	msixEntrySize = 16

	MSIXEnable       = 1 << 15 // message control: MSI-X on (INTx off)
	MSIXFunctionMask = 1 << 14 // message control: every vector masked
	msixTableSize    = 0x7FF   // message control: vectors - 1

	msixVectorMasked = 1 << 0 // vector control: this vector masked

	// MSIXMaxVectors is the most vectors the table size field can name.
	MSIXMaxVectors = 2048
)

// msixEntryWritable is the write mask of a table entry's 16 bytes: the
// address is dword aligned (bits 1:0 read as zero), vector control has
// only the mask bit.
var msixEntryWritable = [msixEntrySize]byte{
	0xFC, 0xFF, 0xFF, 0xFF, // message address
	0xFF, 0xFF, 0xFF, 0xFF, // message upper address
	0xFF, 0xFF, 0xFF, 0xFF, // message data
	msixVectorMasked, 0, 0, 0, // vector control
}

// msixState is a function's MSI-X table and PBA; Function.mu guards all of
// it except what deliverMu guards.
type msixState struct {
	f     *Function
	cfg   MSIXConfig
	cap   int // capability offset in configuration space
	table []byte
	pba   []uint64

	vectors []devices.MSIVector // from the bus, one per entry

	deliverMu  sync.Mutex // orders SetMessage and Trigger per function
	programmed []bool
	last       []devices.MSIMessage
}

// pending is a vector to send, with its message.
type pending struct {
	v   int
	msg devices.MSIMessage
}

func newMSIX(f *Function, c MSIXConfig, capOff int) (*msixState, error) {
	if c.Vectors < 1 || c.Vectors > MSIXMaxVectors {
		return nil, fmt.Errorf("pci: %d MSI-X vectors: give 1 to %d", c.Vectors, MSIXMaxVectors)
	}
	if c.BAR < 0 || c.BAR >= BARCount {
		return nil, fmt.Errorf("pci: MSI-X in BAR%d: there are %d BARs", c.BAR, BARCount)
	}
	b := f.cfg.BARs[c.BAR]
	if b.Kind != BARMem32 && b.Kind != BARMem64 {
		return nil, fmt.Errorf("pci: MSI-X in BAR%d, a %v BAR: give a memory BAR", c.BAR, b.Kind)
	}
	tableLen := uint64(c.Vectors) * msixEntrySize
	pbaLen := uint64((c.Vectors+63)/64) * 8
	switch {
	case c.TableOffset%8 != 0 || c.PBAOffset%8 != 0:
		return nil, fmt.Errorf("pci: MSI-X table at %#x, PBA at %#x: both must be 8-byte aligned", c.TableOffset, c.PBAOffset)
	case c.TableOffset+tableLen > b.Size || c.PBAOffset+pbaLen > b.Size:
		return nil, fmt.Errorf("pci: MSI-X table (%#x+%#x) or PBA (%#x+%#x) does not fit in BAR%d of %#x bytes", c.TableOffset, tableLen, c.PBAOffset, pbaLen, c.BAR, b.Size)
	case c.TableOffset < c.PBAOffset+pbaLen && c.PBAOffset < c.TableOffset+tableLen:
		return nil, fmt.Errorf("pci: MSI-X table (%#x+%#x) and PBA (%#x+%#x) overlap", c.TableOffset, tableLen, c.PBAOffset, pbaLen)
	}
	m := &msixState{
		f: f, cfg: c, cap: capOff,
		table:      make([]byte, tableLen),
		pba:        make([]uint64, pbaLen/8),
		programmed: make([]bool, c.Vectors),
		last:       make([]devices.MSIMessage, c.Vectors),
	}
	for v := 0; v < c.Vectors; v++ {
		m.table[v*msixEntrySize+12] = msixVectorMasked
	}
	le := binary.LittleEndian
	f.space[capOff] = CapIDMSIX
	le.PutUint16(f.space[capOff+2:], uint16(c.Vectors-1))
	le.PutUint32(f.space[capOff+4:], uint32(c.TableOffset)|uint32(c.BAR))
	le.PutUint32(f.space[capOff+8:], uint32(c.PBAOffset)|uint32(c.BAR))
	f.wmask[capOff+3] = (MSIXEnable | MSIXFunctionMask) >> 8
	return m, nil
}

// control returns the message control register; f.mu must be held.
func (m *msixState) control() uint16 {
	return binary.LittleEndian.Uint16(m.f.space[m.cap+2:])
}

// deliverable reports whether vector v may send now; f.mu must be held.
func (m *msixState) deliverable(v int) bool {
	c := m.control()
	return c&MSIXEnable != 0 && c&MSIXFunctionMask == 0 && m.table[v*msixEntrySize+12]&msixVectorMasked == 0
}

// message is vector v's table entry; f.mu must be held.
func (m *msixState) message(v int) devices.MSIMessage {
	e := m.table[v*msixEntrySize:]
	le := binary.LittleEndian
	return devices.MSIMessage{Addr: uint64(le.Uint32(e[4:]))<<32 | uint64(le.Uint32(e)), Data: le.Uint32(e[8:])}
}

func (m *msixState) isPending(v int) bool { return m.pba[v/64]&(1<<(v%64)) != 0 }
func (m *msixState) setPending(v int)     { m.pba[v/64] |= 1 << (v % 64) }
func (m *msixState) clearPending(v int)   { m.pba[v/64] &^= 1 << (v % 64) }

// releasePending clears the pending bit of every vector in [from, to) that
// may now send, and returns them; f.mu must be held.
func (m *msixState) releasePending(from, to int) []pending {
	var out []pending
	for v := from; v < to; v++ {
		if m.isPending(v) && m.deliverable(v) {
			m.clearPending(v)
			out = append(out, pending{v, m.message(v)})
		}
	}
	return out
}

// controlChanged is called after a configuration write; f.mu must be held.
func (m *msixState) controlChanged() []pending {
	return m.releasePending(0, m.cfg.Vectors)
}

// claims reports whether an access of n bytes at off in BAR bar touches
// the table or the PBA.
func (m *msixState) claims(bar int, off uint64, n int) bool {
	if bar != m.cfg.BAR {
		return false
	}
	end := off + uint64(n)
	in := func(start, size uint64) bool { return off < start+size && start < end }
	return in(m.cfg.TableOffset, uint64(len(m.table))) || in(m.cfg.PBAOffset, uint64(len(m.pba))*8)
}

// read fills p from the table or PBA; bytes outside both read as zero.
func (m *msixState) read(bar int, off uint64, p []byte) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	for i := range p {
		o := off + uint64(i)
		p[i] = 0
		if t := o - m.cfg.TableOffset; o >= m.cfg.TableOffset && t < uint64(len(m.table)) {
			p[i] = m.table[t]
		} else if b := o - m.cfg.PBAOffset; o >= m.cfg.PBAOffset && b < uint64(len(m.pba))*8 {
			p[i] = byte(m.pba[b/8] >> (8 * (b % 8)))
		}
	}
}

// write stores p into the table (the PBA is read-only) and returns the
// vectors an unmask released.
func (m *msixState) write(bar int, off uint64, p []byte) []pending {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	first, last := -1, -1
	for i, v := range p {
		o := off + uint64(i)
		t := o - m.cfg.TableOffset
		if o < m.cfg.TableOffset || t >= uint64(len(m.table)) {
			continue
		}
		w := msixEntryWritable[t%msixEntrySize]
		m.table[t] = m.table[t]&^w | v&w
		e := int(t / msixEntrySize)
		if first < 0 {
			first = e
		}
		last = e
	}
	if first < 0 {
		return nil
	}
	return m.releasePending(first, last+1)
}

// ErrNoMSIX says a function has no MSI-X capability, or not that vector.
var ErrNoMSIX = errors.New("pci: no such MSI-X vector")

// MSIXEnabled reports whether the guest has turned MSI-X on; while it is
// on, the function must not use INTx.
func (f *Function) MSIXEnabled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msix != nil && f.msix.control()&MSIXEnable != 0
}

// SendMSIX sends MSI-X vector v: now, if the guest has MSI-X on and the
// vector unmasked (sent is true); later, if it is masked (its pending bit
// is set until the guest unmasks it). With MSI-X off nothing happens.
func (f *Function) SendMSIX(v int) (sent bool, err error) {
	f.mu.Lock()
	m := f.msix
	if m == nil || v < 0 || v >= m.cfg.Vectors {
		f.mu.Unlock()
		return false, fmt.Errorf("%w: vector %d", ErrNoMSIX, v)
	}
	if m.control()&MSIXEnable == 0 {
		f.mu.Unlock()
		return false, nil
	}
	if !m.deliverable(v) {
		m.setPending(v)
		f.mu.Unlock()
		return false, nil
	}
	msg := m.message(v)
	f.mu.Unlock()
	return true, f.deliver([]pending{{v, msg}})
}

// msixDeliver sends vectors from a path that cannot return an error (a
// guest write); failures are counted in IRQErrors.
func (f *Function) msixDeliver(ps []pending) {
	if err := f.deliver(ps); err != nil {
		f.irqErrors.Add(1)
	}
}

// deliver points each vector's route at its message if that changed, and
// triggers it.
func (f *Function) deliver(ps []pending) error {
	if len(ps) == 0 {
		return nil
	}
	m := f.msix
	m.deliverMu.Lock()
	defer m.deliverMu.Unlock()
	var errs []error
	for _, p := range ps {
		if p.v >= len(m.vectors) || m.vectors[p.v] == nil {
			continue // not on a bus: nowhere to send
		}
		if !m.programmed[p.v] || m.last[p.v] != p.msg {
			if err := m.vectors[p.v].SetMessage(p.msg); err != nil {
				errs = append(errs, fmt.Errorf("pci %s: MSI-X vector %d: %w", f.Name(), p.v, err))
				continue
			}
			m.programmed[p.v], m.last[p.v] = true, p.msg
		}
		if err := m.vectors[p.v].Trigger(); err != nil {
			errs = append(errs, fmt.Errorf("pci %s: MSI-X vector %d: %w", f.Name(), p.v, err))
		}
	}
	return errors.Join(errs...)
}

// MSIXPending reports whether vector v's pending bit is set.
func (f *Function) MSIXPending(v int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msix != nil && v >= 0 && v < f.msix.cfg.Vectors && f.msix.isPending(v)
}
