package debugger

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/trace"
	"github.com/govmm/govmm/vcpu"
)

// Address breakpoints. The x86 has four debug registers (DR0-DR3) that
// name linear addresses; DR7 turns each on for instruction fetches (Intel
// SDM vol. 3, 18.2). KVM watches them for the VMM with
// KVM_GUESTDBG_USE_HW_BP, without writing guest memory, in every mode,
// and - on PVM hosts - wherever it emulates the guest (real mode,
// protected mode, ring 0). Beyond four, a breakpoint is an int3 (0xCC)
// written over the instruction's first byte, which KVM reports with
// KVM_GUESTDBG_USE_SW_BP (or, on PVM, as an emulation failure on int3).
// On PVM hosts guest ring-3 code runs natively: neither kind stops it.

// hardSlots is the number of debug registers that hold addresses.
const hardSlots = 4

// noSkip is guestDebug's argument when no slot is left out.
const noSkip = -1

// DR7 bits: Ln enables breakpoint n locally; bit 10 reads as 1 on every
// CPU and is written so; GE and LE ask for exact breakpoints, as
// debuggers traditionally set them.
const (
	dr7Reserved = 1 << 10
	dr7LEGE     = 3 << 8
)

type breakpoints struct {
	hard [hardSlots]uint64
	used [hardSlots]bool
	soft map[uint64]byte // int3 breakpoints: the byte they cover
}

// guestDebug is the KVM_SET_GUEST_DEBUG value for the breakpoints, slot
// skip left out (to step off it), or all with noSkip.
func (b *breakpoints) guestDebug(skip int) kvm.GuestDebug {
	var g kvm.GuestDebug
	var dr7 uint64
	for i := range hardSlots {
		if b.used[i] && i != skip {
			g.DebugReg[i] = b.hard[i]
			dr7 |= 1 << (2 * i)
		}
	}
	if dr7 != 0 {
		g.Control |= kvm.GuestDebugUseHWBP
		g.DebugReg[7] = dr7 | dr7Reserved | dr7LEGE
	}
	if len(b.soft) > 0 {
		g.Control |= kvm.GuestDebugUseSWBP
	}
	return g
}

func (b *breakpoints) hardAt(addr uint64) (int, bool) {
	for i := range hardSlots {
		if b.used[i] && b.hard[i] == addr {
			return i, true
		}
	}
	return noSkip, false
}

// hardHit is the slot whose B bit DR6 sets.
func (b *breakpoints) hardHit(dr6 uint64) (int, bool) {
	for i := range hardSlots {
		if b.used[i] && dr6&(1<<i) != 0 {
			return i, true
		}
	}
	return 0, false
}

func (b *breakpoints) softAt(addr uint64) bool {
	_, ok := b.soft[addr]
	return ok
}

// Breakpoint is an address breakpoint.
type Breakpoint struct {
	Addr uint64
	Hard bool // a debug register; else an int3 in guest memory
}

// ErrNoSlot is AddBreakpoint's error when hardOnly and the four debug
// registers are taken.
var ErrNoSlot = errors.New("all four debug registers hold breakpoints")

// AddBreakpoint stops the machine when a vCPU is about to run the
// instruction at linear address addr. With hardOnly it takes a debug
// register. Otherwise, where KVM emulates the guest (PVM hosts), it takes
// a debug register while one is free, then an int3: there the int3 of a
// breakpoint in real mode would be run as an interrupt, and in ring 0 it
// is an emulation failure that the debugger must catch. With hardware
// virtualization it writes an int3, as debuggers do: unlimited, and it
// stops ring-3 code too. The machine must be stopped. Adding an address
// twice is not an error.
func (d *Debugger) AddBreakpoint(ctx context.Context, addr uint64, hardOnly bool) (Breakpoint, error) {
	d.mu.Lock()
	if _, ok := d.bps.hardAt(addr); ok {
		d.mu.Unlock()
		return Breakpoint{addr, true}, nil
	}
	if d.bps.softAt(addr) {
		d.mu.Unlock()
		return Breakpoint{addr, false}, nil
	}
	if hardOnly || d.emulated {
		for i := range hardSlots {
			if !d.bps.used[i] {
				d.bps.used[i], d.bps.hard[i] = true, addr
				d.mu.Unlock()
				return Breakpoint{addr, true}, nil
			}
		}
	}
	d.mu.Unlock()
	if hardOnly {
		return Breakpoint{}, ErrNoSlot
	}
	var orig [1]byte
	err := d.onHeld(ctx, func(h *vcpu.Handle) error {
		if _, err := h.ReadLinear(addr, orig[:]); err != nil {
			return err
		}
		_, err := h.WriteLinear(addr, []byte{0xCC})
		return err
	})
	if err != nil {
		return Breakpoint{}, fmt.Errorf("int3 breakpoint at %#x: %w", addr, err)
	}
	d.mu.Lock()
	if d.bps.soft == nil {
		d.bps.soft = map[uint64]byte{}
	}
	d.bps.soft[addr] = orig[0]
	d.mu.Unlock()
	return Breakpoint{addr, false}, nil
}

// RemoveBreakpoint removes the breakpoint at addr, if there is one.
func (d *Debugger) RemoveBreakpoint(ctx context.Context, addr uint64) error {
	d.mu.Lock()
	if slot, ok := d.bps.hardAt(addr); ok {
		d.bps.used[slot] = false
		d.mu.Unlock()
		return nil
	}
	orig, ok := d.bps.soft[addr]
	d.mu.Unlock()
	if !ok {
		return nil
	}
	if err := d.onHeld(ctx, func(h *vcpu.Handle) error {
		_, err := h.WriteLinear(addr, []byte{orig})
		return err
	}); err != nil {
		return fmt.Errorf("removing the int3 at %#x: %w", addr, err)
	}
	d.mu.Lock()
	delete(d.bps.soft, addr)
	d.mu.Unlock()
	return nil
}

// Breakpoints lists the address breakpoints, by address.
func (d *Debugger) Breakpoints() []Breakpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Breakpoint
	for i := range hardSlots {
		if d.bps.used[i] {
			out = append(out, Breakpoint{d.bps.hard[i], true})
		}
	}
	for a := range d.bps.soft {
		out = append(out, Breakpoint{a, false})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// onHeld runs fn on the first held vCPU: memory is the machine's, and
// any stopped vCPU's page tables will do for the kernel's addresses.
func (d *Debugger) onHeld(ctx context.Context, fn func(*vcpu.Handle) error) error {
	d.mu.Lock()
	id := -1
	for i, c := range d.cpus {
		if c.mode == held {
			id = i
			break
		}
	}
	d.mu.Unlock()
	if id < 0 {
		return errors.New("the machine is not stopped")
	}
	return d.Do(ctx, id, fn)
}

// ReadMemory reads guest memory at linear address addr as vCPU id sees
// it, showing the bytes int3 breakpoints cover rather than the 0xCC.
func (d *Debugger) ReadMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error) {
	var n int
	err := d.Do(ctx, id, func(h *vcpu.Handle) error {
		var err error
		n, err = h.ReadLinear(addr, p)
		return err
	})
	d.mu.Lock()
	for a, orig := range d.bps.soft {
		if a >= addr && a < addr+uint64(n) {
			p[a-addr] = orig
		}
	}
	d.mu.Unlock()
	return n, err
}

// WriteMemory writes guest memory at linear address addr as vCPU id sees
// it. Bytes under an int3 breakpoint go to the breakpoint's memory of the
// instruction, and the int3 stays.
func (d *Debugger) WriteMemory(ctx context.Context, id int, addr uint64, p []byte) (int, error) {
	b := append([]byte(nil), p...)
	d.mu.Lock()
	for a := range d.bps.soft {
		if a >= addr && a < addr+uint64(len(b)) {
			d.bps.soft[a] = b[a-addr]
			b[a-addr] = 0xCC
		}
	}
	d.mu.Unlock()
	var n int
	err := d.Do(ctx, id, func(h *vcpu.Handle) error {
		var err error
		n, err = h.WriteLinear(addr, b)
		return err
	})
	return n, err
}

// ExitBreak stops the machine at user-space exits: of one reason (any,
// with Reason 0), and, with a range, only port or MMIO accesses in
// [Lo, Hi].
type ExitBreak struct {
	Reason   kvm.ExitReason
	HasRange bool
	Space    devices.Space
	Lo, Hi   uint64
}

func (b ExitBreak) matches(i *trace.Info) bool {
	if b.Reason != 0 && b.Reason != i.Reason {
		return false
	}
	if !b.HasRange {
		return true
	}
	if !i.Access() || i.Space != b.Space {
		return false
	}
	last := i.Addr + uint64(max(i.Size, 1)) - 1
	return i.Addr <= b.Hi && last >= b.Lo
}

func (b ExitBreak) String() string {
	s := "any exit"
	if b.Reason != 0 {
		s = b.Reason.String()
	}
	if b.HasRange {
		s = fmt.Sprintf("%s at %s %#x", s, b.Space, b.Lo)
		if b.Hi != b.Lo {
			s += fmt.Sprintf("-%#x", b.Hi)
		}
	}
	return s
}

// AddExitBreak adds b and returns its index.
func (d *Debugger) AddExitBreak(b ExitBreak) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.exitBreaks = append(d.exitBreaks, b)
	return len(d.exitBreaks) - 1
}

// ExitBreaks lists the exit breaks; removed ones are gone from the list.
func (d *Debugger) ExitBreaks() []ExitBreak {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]ExitBreak(nil), d.exitBreaks...)
}

// ClearBreaks removes every exit break and address breakpoint.
func (d *Debugger) ClearBreaks(ctx context.Context) error {
	d.mu.Lock()
	d.exitBreaks = nil
	d.bps.used = [hardSlots]bool{}
	var soft []uint64
	for a := range d.bps.soft {
		soft = append(soft, a)
	}
	d.mu.Unlock()
	var errs []error
	for _, a := range soft {
		errs = append(errs, d.RemoveBreakpoint(ctx, a))
	}
	return errors.Join(errs...)
}

// matchExitBreak is the first exit break info matches, or -1. Called with mu.
func (d *Debugger) matchExitBreak(i *trace.Info) int {
	for k, b := range d.exitBreaks {
		if b.matches(i) {
			return k
		}
	}
	return -1
}
