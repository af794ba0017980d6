package trace

import (
	"golang.org/x/arch/x86/x86asm"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Where RIP points at an exit depends on who ran the instruction. KVM's
// instruction emulator finishes an OUT and an MMIO write before it exits
// to user space, so RIP is already past them; it re-runs an IN and an
// MMIO read once the VMM has supplied the data, so RIP is still on them.
// With hardware virtualization a port access takes KVM's fast path, which
// exits with RIP on the instruction either way. On PVM hosts KVM emulates
// everything but ring-3 code (and ring 3 cannot reach ports).
//
// Culprit finds the instruction that made an exit from these rules, and
// checks its candidate against the exit (an IN or OUT of that port and
// direction; an instruction with a memory operand for MMIO) before it
// trusts it. Decoding backwards on x86 is ambiguous in general; the check
// makes a wrong answer unlikely, and Culprit says when it found none.

// Culprit is the instruction an exit came from.
type Culprit struct {
	Insn vcpu.Instruction
	// RIP is the instruction's offset in CS (what KVM's RIP is); Linear
	// its linear address.
	RIP, Linear uint64
	// Done says the guest has moved past it: RIP at the exit was the next
	// instruction's (KVM's emulator finished it before exiting).
	Done bool
	// Next is RIP at the exit.
	Next uint64
}

// FindCulprit finds the instruction that caused the exit. emulated says
// KVM emulates port I/O (PVM hosts): an OUT is then finished before the
// exit. For exits other than port and MMIO accesses it is the instruction
// at RIP: the one a step or breakpoint stopped before, or the one that
// faulted. ok is false when the bytes cannot be read or decoded or no
// candidate matches the exit.
func FindCulprit(h *vcpu.Handle, exit kvm.Exit, emulated bool) (c Culprit, ok bool) {
	regs, err := h.Regs()
	if err != nil {
		return c, false
	}
	sregs, err := h.Sregs()
	if err != nil {
		return c, false
	}
	mode := vcpu.ModeOf(sregs, regs.RFLAGS)
	pc := vcpu.LinearPC(sregs, regs.RIP)
	c.Next = regs.RIP
	// Up to 15 bytes before RIP and 15 from it, read separately: the
	// page before may be unmapped.
	var before, at [15]byte
	nAt, _ := h.ReadLinear(pc, at[:])
	nBefore := 0
	if pc >= 15 {
		nBefore, _ = h.ReadLinear(pc-15, before[:])
	}
	if nBefore < 15 {
		nBefore = 0
	}
	atRIP := func() bool {
		in, err := vcpu.DecodeInst(at[:nAt], mode)
		if err != nil || !matches(&in, exit, regs) {
			return false
		}
		c.Insn, c.RIP, c.Linear, c.Done = vcpu.Describe(in, at[:nAt], mode, regs.RIP), regs.RIP, pc, false
		return true
	}
	behind := func() bool {
		var buf [30]byte
		copy(buf[:], before[:nBefore])
		copy(buf[15:], at[:nAt])
		for k := 1; k <= nBefore && uint64(k) <= regs.RIP; k++ {
			in, err := vcpu.DecodeInst(buf[15-k:15+nAt], mode)
			if err != nil || in.Len != k || !matches(&in, exit, regs) {
				continue
			}
			// The shortest match may have lost its legacy prefixes (rep,
			// an operand or address size, a segment): take them back.
			for p := k + 1; p <= nBefore && uint64(p) <= regs.RIP && isLegacyPrefix(buf[15-p]); p++ {
				if longer, err := vcpu.DecodeInst(buf[15-p:15+nAt], mode); err == nil && longer.Len == p && longer.Op == in.Op {
					in, k = longer, p
				}
			}
			c.Insn, c.RIP, c.Linear, c.Done = vcpu.Describe(in, buf[15-k:15+nAt], mode, regs.RIP-uint64(k)), regs.RIP-uint64(k), pc-uint64(k), true
			return true
		}
		return false
	}
	first, second := atRIP, behind
	switch e := exit.(type) {
	case *kvm.IOExit:
		if e.Out && emulated {
			first, second = behind, atRIP
		}
	case *kvm.MMIOExit:
		if e.Write {
			first, second = behind, atRIP
		}
	default:
		second = func() bool { return false }
	}
	if first() || second() {
		return c, true
	}
	return Culprit{Next: regs.RIP}, false
}

// matches says whether in could have made exit.
func matches(in *x86asm.Inst, exit kvm.Exit, regs *kvm.Regs) bool {
	switch e := exit.(type) {
	case *kvm.IOExit:
		var out bool
		switch in.Op {
		case x86asm.OUT, x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
			out = true
		case x86asm.IN, x86asm.INSB, x86asm.INSW, x86asm.INSD:
		default:
			return false
		}
		if out != e.Out {
			return false
		}
		// The port: an immediate, or DX.
		for _, a := range in.Args {
			switch a := a.(type) {
			case x86asm.Imm:
				return uint16(a) == e.Port
			case x86asm.Reg:
				if a == x86asm.DX {
					return uint16(regs.RDX) == e.Port
				}
			}
		}
		return uint16(regs.RDX) == e.Port // string forms take DX implicitly
	case *kvm.MMIOExit:
		// A memory operand narrower than the access cannot have made it:
		// without this, any instruction ending in 00 00 matched as
		// "add byte ptr [eax], al" when read backwards. (Wider is
		// possible: KVM splits an access that crosses a page, and one
		// over 8 bytes, into several exits.)
		if in.MemBytes != 0 && in.MemBytes < len(e.Data) {
			return false
		}
		for _, a := range in.Args {
			if _, ok := a.(x86asm.Mem); ok {
				return true
			}
		}
		switch in.Op {
		case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ,
			x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
			x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ:
			return true
		}
		return false
	}
	return true
}

// isLegacyPrefix says whether b is one of the legacy instruction prefixes
// (Intel SDM vol. 2, 2.1.1): lock, rep, segment overrides, operand and
// address size.
func isLegacyPrefix(b byte) bool {
	switch b {
	case 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67:
		return true
	}
	return false
}
