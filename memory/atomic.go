package memory

import "fmt"

// Atomic accessors for memory the guest shares with the VMM, such as
// virtqueue rings (virtio 1.2, 2.7.13: the driver and the device order
// their ring accesses with memory barriers). Each access is one aligned
// machine load or store that the compiler can neither split, merge nor
// move past another: loads acquire (on x86 no load passes an earlier
// load), stores are sequentially consistent (XCHG, a full barrier, so a
// later load of another guest field sees the guest's view after it).
// Plain Slice copies are for bulk data that such an access publishes.

// LoadUint16 reads the little-endian 16-bit value at addr, which must be
// 2-byte aligned and in RAM.
func (m *Memory) LoadUint16(addr GuestAddr) (uint16, error) {
	b, err := m.aligned(addr, 2)
	if err != nil {
		return 0, err
	}
	v := load16(b)
	raceAcquire()
	return v, nil
}

// StoreUint16 writes v at addr, which must be 2-byte aligned and in RAM.
func (m *Memory) StoreUint16(addr GuestAddr, v uint16) error {
	b, err := m.aligned(addr, 2)
	if err != nil {
		return err
	}
	raceRelease()
	store16(b, v)
	m.MarkDirty(addr, 2)
	return nil
}

// LoadUint32 reads the 32-bit value at addr, 4-byte aligned, in RAM.
func (m *Memory) LoadUint32(addr GuestAddr) (uint32, error) {
	b, err := m.aligned(addr, 4)
	if err != nil {
		return 0, err
	}
	v := load32(b)
	raceAcquire()
	return v, nil
}

// StoreUint32 writes v at addr, 4-byte aligned, in RAM.
func (m *Memory) StoreUint32(addr GuestAddr, v uint32) error {
	b, err := m.aligned(addr, 4)
	if err != nil {
		return err
	}
	raceRelease()
	store32(b, v)
	m.MarkDirty(addr, 4)
	return nil
}

// Fence is a full memory barrier (MFENCE): no load or store after it is
// done before every one before it is, as the virtio spec's mb() between
// publishing the used index and reading the driver's event index.
func Fence() { fence() }

// aligned returns the n host bytes at addr, checked for alignment.
func (m *Memory) aligned(addr GuestAddr, n uint64) ([]byte, error) {
	if uint64(addr)%n != 0 {
		return nil, fmt.Errorf("guest address %v is not %d-byte aligned for an atomic access", addr, n)
	}
	return m.Slice(addr, n)
}
