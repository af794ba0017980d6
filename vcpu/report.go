package vcpu

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"

	"github.com/govmm/govmm/kvm"
)

// GuestError is the report of a guest the VMM had to stop: why, where, and
// the machine state at that moment.
type GuestError struct {
	VCPU   int
	Reason string
	Regs   kvm.Regs
	Sregs  kvm.Sregs
	Insn   []byte // bytes at RIP, as KVM gave them or read from guest memory
	Disasm string // Insn decoded, or why it could not be
	// StateErr is set when the registers could not be read.
	StateErr error
}

// Error is one line: reason, RIP and the instruction there.
func (e *GuestError) Error() string {
	if e.StateErr != nil {
		return fmt.Sprintf("vcpu %d: %s (registers unavailable: %v)", e.VCPU, e.Reason, e.StateErr)
	}
	return fmt.Sprintf("vcpu %d: %s at rip=%#x [% x] %s", e.VCPU, e.Reason, e.Regs.RIP, e.Insn, e.Disasm)
}

// Registers is the register dump for the log, several lines; empty when
// the registers could not be read.
func (e *GuestError) Registers() string {
	var b strings.Builder
	if e.StateErr != nil {
		return ""
	}
	r, s := &e.Regs, &e.Sregs
	fmt.Fprintf(&b, "  rax=%016x rbx=%016x rcx=%016x rdx=%016x\n", r.RAX, r.RBX, r.RCX, r.RDX)
	fmt.Fprintf(&b, "  rsi=%016x rdi=%016x rsp=%016x rbp=%016x\n", r.RSI, r.RDI, r.RSP, r.RBP)
	fmt.Fprintf(&b, "  r8 =%016x r9 =%016x r10=%016x r11=%016x\n", r.R8, r.R9, r.R10, r.R11)
	fmt.Fprintf(&b, "  r12=%016x r13=%016x r14=%016x r15=%016x\n", r.R12, r.R13, r.R14, r.R15)
	fmt.Fprintf(&b, "  rip=%016x rflags=%08x\n", r.RIP, r.RFLAGS)
	fmt.Fprintf(&b, "  cs=%04x ss=%04x ds=%04x es=%04x fs=%04x gs=%04x tr=%04x (cpl %d)\n",
		s.CS.Selector, s.SS.Selector, s.DS.Selector, s.ES.Selector, s.FS.Selector, s.GS.Selector, s.TR.Selector, s.CS.DPL)
	fmt.Fprintf(&b, "  cr0=%016x cr2=%016x cr3=%016x cr4=%016x efer=%x\n", s.CR0, s.CR2, s.CR3, s.CR4, s.EFER)
	fmt.Fprintf(&b, "  gdt=%x/%x idt=%x/%x\n", s.GDT.Base, s.GDT.Limit, s.IDT.Base, s.IDT.Limit)
	return b.String()
}

// report builds a GuestError with the current registers. insn may be nil,
// in which case the bytes at RIP are read from guest memory.
func (v *VCPU) report(reason string, insn []byte) *GuestError {
	e := &GuestError{VCPU: v.ID, Reason: reason}
	if err := v.HW.GetRegs(&e.Regs); err != nil {
		e.StateErr = err
		return e
	}
	if err := v.HW.GetSregs(&e.Sregs); err != nil {
		e.StateErr = err
		return e
	}
	e.Insn = insn
	if len(e.Insn) == 0 {
		e.Insn = v.fetchInsnWith(&e.Sregs, e.Regs.RIP)
	}
	e.Disasm = disassemble(e.Insn, cpuMode(&e.Sregs))
	return e
}

// fetchInsn reads up to 15 bytes at rip, or returns nil if they cannot be
// reached.
func (v *VCPU) fetchInsn(rip uint64) []byte {
	var s kvm.Sregs
	if err := v.HW.GetSregs(&s); err != nil {
		return nil
	}
	return v.fetchInsnWith(&s, rip)
}

func (v *VCPU) fetchInsnWith(s *kvm.Sregs, rip uint64) []byte {
	if v.Mem == nil {
		return nil
	}
	linear := rip
	if s.EFER&eferLMA == 0 {
		linear = s.CS.Base + rip&0xFFFF_FFFF
	}
	pa, err := Translate(v.Mem, Paging{CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER}, linear)
	if err != nil {
		return nil
	}
	// Take what is there up to 15 bytes, stopping at the end of RAM.
	for n := uint64(15); n > 0; n-- {
		if b, err := v.Mem.Slice(pa, n); err == nil {
			return append([]byte(nil), b...)
		}
	}
	return nil
}

// cpuMode is the operand mode the CPU is in: 16, 32 or 64.
func cpuMode(s *kvm.Sregs) int {
	switch {
	case s.EFER&eferLMA != 0 && s.CS.L != 0:
		return 64
	case s.CR0&1 == 0 || s.CS.DB == 0:
		return 16
	}
	return 32
}

// disassemble decodes the first instruction of insn in Intel syntax.
func disassemble(insn []byte, mode int) string {
	if len(insn) == 0 {
		return "(instruction bytes unavailable)"
	}
	in, err := x86asm.Decode(insn, mode)
	if err != nil {
		return fmt.Sprintf("(undecodable: %v)", err)
	}
	return x86asm.IntelSyntax(in, 0, nil)
}
