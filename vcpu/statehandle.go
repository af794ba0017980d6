package vcpu

import (
	"errors"
	"fmt"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// Handle reads and changes a vCPU that is not inside KVM_RUN: its
// registers, the guest memory it sees through its page tables, and guest
// debugging. Observers get one in Event.State; a debugger gets one through
// Do while the vCPU is in the Debug state. It must not be kept past that
// call: it is only valid on the vCPU's thread, between two KVM_RUNs.
//
// Registers are read from KVM once per exit and kept until the next
// KVM_RUN, so several observers of one exit cost one KVM_GET_REGS.
type Handle struct {
	v     *VCPU
	regs  kvm.Regs
	sregs kvm.Sregs
	have  uint8 // haveRegs, haveSregs
}

const (
	haveRegs uint8 = 1 << iota
	haveSregs
)

// ErrNoDebug is returned where the vCPU's hardware cannot set guest
// debugging (a test's fake).
var ErrNoDebug = errors.New("this vCPU cannot set guest debugging (KVM_SET_GUEST_DEBUG)")

// DebugHardware is what guest debugging needs on top of Hardware.
// *kvm.VCPU implements it.
type DebugHardware interface {
	SetGuestDebug(*kvm.GuestDebug) error
}

// forget drops what was read, at each new exit and after the loop has
// handled one (a fixup may have changed the registers).
func (h *Handle) forget() { h.have = 0 }

// VCPU is the vCPU's index.
func (h *Handle) VCPU() int { return h.v.ID }

// Regs returns the general-purpose registers. The pointer is to the
// handle's copy: change it through SetRegs.
func (h *Handle) Regs() (*kvm.Regs, error) {
	if h.have&haveRegs == 0 {
		if err := h.v.HW.GetRegs(&h.regs); err != nil {
			return nil, err
		}
		h.have |= haveRegs
	}
	return &h.regs, nil
}

// CachedRegs returns the registers if something has read them since the
// exit, without asking KVM: for observers that want RIP only when it is
// free (the flight recorder).
func (h *Handle) CachedRegs() (*kvm.Regs, bool) {
	return &h.regs, h.have&haveRegs != 0
}

// SetRegs writes the general-purpose registers.
func (h *Handle) SetRegs(r *kvm.Regs) error {
	if err := h.v.HW.SetRegs(r); err != nil {
		h.have &^= haveRegs
		return err
	}
	h.regs = *r
	h.have |= haveRegs
	return nil
}

// Sregs returns the segment and control registers, as Regs does.
func (h *Handle) Sregs() (*kvm.Sregs, error) {
	if h.have&haveSregs == 0 {
		if err := h.v.HW.GetSregs(&h.sregs); err != nil {
			return nil, err
		}
		h.have |= haveSregs
	}
	return &h.sregs, nil
}

// SetSregs writes the segment and control registers; the hardware must
// offer them (StateHardware).
func (h *Handle) SetSregs(s *kvm.Sregs) error {
	hw, ok := h.v.HW.(interface{ SetSregs(*kvm.Sregs) error })
	if !ok {
		return fmt.Errorf("vcpu %d: this vCPU cannot set its special registers", h.v.ID)
	}
	if err := hw.SetSregs(s); err != nil {
		h.have &^= haveSregs
		return err
	}
	h.sregs = *s
	h.have |= haveSregs
	return nil
}

// FPU returns the x87 and SSE registers; the hardware must offer them.
func (h *Handle) FPU() (kvm.FPU, error) {
	var f kvm.FPU
	hw, ok := h.v.HW.(interface{ GetFPU(*kvm.FPU) error })
	if !ok {
		return f, fmt.Errorf("vcpu %d: this vCPU cannot read its FPU registers", h.v.ID)
	}
	err := hw.GetFPU(&f)
	return f, err
}

// Mode is the CPU mode: real, protected, long and so on.
func (h *Handle) Mode() (Mode, error) {
	s, err := h.Sregs()
	if err != nil {
		return ModeUnknown, err
	}
	r, err := h.Regs()
	if err != nil {
		return ModeUnknown, err
	}
	return ModeOf(s, r.RFLAGS), nil
}

// PC is the linear address of the next instruction: CS's base plus RIP
// outside long mode, RIP in it.
func (h *Handle) PC() (uint64, error) {
	s, err := h.Sregs()
	if err != nil {
		return 0, err
	}
	r, err := h.Regs()
	if err != nil {
		return 0, err
	}
	return LinearPC(s, r.RIP), nil
}

// LinearPC is the linear address of rip in code segment cs.
func LinearPC(s *kvm.Sregs, rip uint64) uint64 {
	if s.EFER&eferLMA != 0 && s.CS.L != 0 {
		return rip
	}
	return (s.CS.Base + rip) & 0xFFFF_FFFF
}

// Translate turns a linear address into a guest-physical one through the
// vCPU's page tables.
func (h *Handle) Translate(linear uint64) (memory.GuestAddr, error) {
	s, err := h.Sregs()
	if err != nil {
		return 0, err
	}
	return Translate(h.v.Mem, Paging{CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER}, linear)
}

// ReadLinear fills p from linear address addr, page by page through the
// page tables. It returns how many bytes it read before an unmapped page
// or the end of RAM stopped it.
func (h *Handle) ReadLinear(addr uint64, p []byte) (int, error) {
	return h.linear(addr, p, false)
}

// WriteLinear writes p at linear address addr, as ReadLinear reads. A
// debugger writes this way: breakpoints, gdb's M packets.
func (h *Handle) WriteLinear(addr uint64, p []byte) (int, error) {
	return h.linear(addr, p, true)
}

func (h *Handle) linear(addr uint64, p []byte, write bool) (int, error) {
	if h.v.Mem == nil {
		return 0, fmt.Errorf("vcpu %d: no guest memory", h.v.ID)
	}
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		n := min(len(p)-done, int(0x1000-a&0xFFF))
		pa, err := h.Translate(a)
		if err != nil {
			return done, err
		}
		b, err := h.v.Mem.Slice(pa, uint64(n))
		if err != nil {
			return done, fmt.Errorf("linear %#x: %w", a, err)
		}
		if write {
			copy(b, p[done:done+n])
		} else {
			copy(p[done:done+n], b)
		}
		done += n
	}
	return done, nil
}

// Instruction returns up to 15 bytes at the next instruction (fewer at the
// end of mapped memory), the mode to decode them in, and the linear PC.
func (h *Handle) Instruction(buf *[15]byte) ([]byte, Mode, uint64, error) {
	mode, err := h.Mode()
	if err != nil {
		return nil, mode, 0, err
	}
	pc, err := h.PC()
	if err != nil {
		return nil, mode, 0, err
	}
	n, err := h.ReadLinear(pc, buf[:])
	if n == 0 {
		return nil, mode, pc, err
	}
	return buf[:n], mode, pc, nil
}

// Buses are the port-I/O and MMIO buses the vCPU dispatches to, for
// naming the device behind an exit.
func (h *Handle) Buses() (io, mmio *devices.Bus) { return h.v.IO, h.v.MMIO }

// Memory is the guest's RAM.
func (h *Handle) Memory() *memory.Memory { return h.v.Mem }

// GuestDebug returns the debugging the debugger asked for: breakpoints
// and their debug registers. Single-stepping is the loop's own (Step).
func (h *Handle) GuestDebug() kvm.GuestDebug { return h.v.debugBase }

// SetGuestDebug sets the breakpoints KVM watches for this vCPU
// (KVM_GUESTDBG_USE_SW_BP, KVM_GUESTDBG_USE_HW_BP with DR0-DR3 and DR7);
// the loop adds KVM_GUESTDBG_ENABLE and single-stepping and passes the
// result to KVM_SET_GUEST_DEBUG before the guest runs again. A zero
// GuestDebug turns it all off.
func (h *Handle) SetGuestDebug(d kvm.GuestDebug) error {
	if _, ok := h.v.HW.(DebugHardware); !ok && d.Control != 0 {
		return ErrNoDebug
	}
	h.v.debugBase = d
	return nil
}
