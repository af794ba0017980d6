package machine

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// Dirty-page tracking, for migration's rounds and diff snapshots.
//
// KVM offers two ways to learn which pages the guest wrote: a bitmap per
// memory slot (KVM_GET_DIRTY_LOG) and, on newer kernels, a ring per vCPU
// (KVM_CAP_DIRTY_LOG_RING; PVM hosts offer both). govmm uses the bitmap:
// it needs nothing at VM creation, so every VM can be migrated without
// paying for it until then, and no new exit in the run loop (a full ring
// stops the vCPU with KVM_EXIT_DIRTY_RING_FULL). Reading it costs a bit per
// page (16 KiB for 512 MiB), a few microseconds, once a round. The guest's
// writes are OR'd with the pages the VMM wrote itself (memory's
// TrackWrites), which KVM cannot see.

// dirtyLogs are the open DirtyLogs. Each harvest from KVM clears KVM's
// log, so it goes into every open one.
type dirtyLogs struct {
	mu   sync.Mutex
	open []*DirtyLog
	slot []uint64 // the buffer KVM_GET_DIRTY_LOG fills
}

// DirtyLog collects the pages of guest RAM written since it was started
// or last collected, by the guest or by the VMM.
type DirtyLog struct {
	m    *Machine
	bits *memory.Bitmap
}

// StartDirtyLog starts collecting written pages. The first open log turns
// on KVM's dirty logging on every RAM slot (which write-protects the
// guest's pages, so its first write to each page after each Collect
// costs a fault) and the VMM's own record; the last Close turns them off.
func (m *Machine) StartDirtyLog() (*DirtyLog, error) {
	d := &m.mob.dirty
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.open) == 0 {
		if err := m.logDirty(true); err != nil {
			return nil, errors.Join(err, m.logDirty(false))
		}
	}
	l := &DirtyLog{m: m, bits: m.mem.NewBitmap()}
	d.open = append(d.open, l)
	return l, nil
}

// logDirty sets or clears KVM_MEM_LOG_DIRTY_PAGES on every RAM slot.
func (m *Machine) logDirty(on bool) error {
	var flags uint32
	if on {
		flags = kvm.MemLogDirtyPages
	}
	m.mem.TrackWrites(on)
	for i, r := range m.mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(i), flags, uint64(r.Start), r.Host); err != nil {
			return fmt.Errorf("turning dirty-page logging %s: %w", map[bool]string{true: "on", false: "off"}[on], err)
		}
	}
	return nil
}

// Collect returns the pages written since the last Collect (or Start),
// and starts a new count.
func (l *DirtyLog) Collect() (*memory.Bitmap, error) {
	d := &l.m.mob.dirty
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.open, l) {
		return nil, errors.New("dirty log: collected after Close")
	}
	if err := l.m.harvestLocked(); err != nil {
		return nil, err
	}
	out := l.bits
	l.bits = l.m.mem.NewBitmap()
	return out, nil
}

// harvestLocked reads and clears KVM's log of every slot and the VMM's
// record, into every open log.
func (m *Machine) harvestLocked() error {
	d := &m.mob.dirty
	first := 0
	for i, r := range m.mem.Regions() {
		pages := int(r.Size() / memory.PageSize)
		words := (pages + 63) / 64
		if cap(d.slot) < words {
			d.slot = make([]uint64, words)
		}
		buf := d.slot[:words]
		clear(buf)
		if err := m.vm.GetDirtyLog(uint32(i), buf); err != nil {
			return fmt.Errorf("reading the dirty-page log: %w", err)
		}
		for _, l := range d.open {
			l.bits.OrWords(first, buf)
		}
		first += pages
	}
	if len(d.open) > 0 {
		vmm := m.mem.NewBitmap()
		m.mem.TakeWrites(vmm)
		for _, l := range d.open {
			l.bits.Or(vmm)
		}
	}
	return nil
}

// Close stops the log; the last one open turns dirty logging off.
func (l *DirtyLog) Close() error {
	d := &l.m.mob.dirty
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.Index(d.open, l)
	if i < 0 {
		return nil
	}
	// What KVM logged until now still belongs to the others.
	err := l.m.harvestLocked()
	d.open = slices.Delete(d.open, i, i+1)
	if len(d.open) == 0 {
		err = errors.Join(err, l.m.logDirty(false))
	}
	return err
}
