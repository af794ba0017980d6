package vcpu

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// LDMXCSR and STMXCSR (Intel SDM vol. 2A/2B): 0F AE /2 loads MXCSR from a
// 32-bit memory operand, 0F AE /3 stores it there. KVM's emulator on PVM
// hosts gives up on both (Linux's kernel_fpu_begin runs ldmxcsr [rsp+4]),
// so the VMM performs them on the vCPU's FPU state.
const (
	opGroup15    = 0xAE // 0F AE: group 15, the ModRM reg field picks the instruction
	digitLdmxcsr = 2
	digitStmxcsr = 3
)

// defaultMXCSRMask is the MXCSR_MASK to assume when the state reports 0
// (SDM vol. 1, 11.6.6): every bit but DAZ. LDMXCSR of a value with a bit
// outside the mask raises #GP(0).
const defaultMXCSRMask = 0xFFBF

// Control-register bits the instructions check (SDM vol. 2B, LDMXCSR,
// "64-Bit Mode Exceptions").
const (
	cr0EM     = 1 << 2 // x87 emulation: SSE instructions raise #UD
	cr0TS     = 1 << 3 // task switched: SSE instructions raise #NM
	cr4OSFXSR = 1 << 9 // the OS supports FXSAVE/FXRSTOR and SSE
)

// Exception vectors the fixups raise.
const (
	vectorUD = 6  // invalid opcode
	vectorNM = 7  // device not available
	vectorGP = 13 // general protection, with an error code
)

// isMXCSRInsn reports whether m is LDMXCSR or STMXCSR in their legacy
// encoding: 0F AE /2 or /3, no operand-size or repeat prefix (66, F2 and F3
// turn group 15 into other instructions) and no LOCK (which is #UD).
func isMXCSRInsn(m *memInsn) bool {
	if len(m.opcode) != 2 || m.opcode[1] != opGroup15 || m.opsize || m.rep || m.repne || m.lock {
		return false
	}
	return m.reg&7 == digitLdmxcsr || m.reg&7 == digitStmxcsr
}

// fixupMXCSR performs LDMXCSR or STMXCSR for the guest: it reads or writes
// the 4-byte operand in guest RAM through the guest's page tables, sets or
// gets MXCSR through KVM_GET/SET_XSAVE and steps RIP over the instruction,
// or raises the exception hardware would. It reports false, with no
// error, when insn is not one of the two in 64-bit mode, and a report (a
// *GuestError) when the operand cannot be reached: a page fault the VMM
// does not deliver.
func (v *VCPU) fixupMXCSR(insn []byte, regs *kvm.Regs) (bool, error) {
	m, err := decodeMemInsn(insn)
	if err != nil || !isMXCSRInsn(m) || v.Mem == nil {
		return false, nil
	}
	var sregs kvm.Sregs
	if err := v.HW.GetSregs(&sregs); err != nil {
		return false, fmt.Errorf("vcpu %d: reading special registers for an emulation failure: %w", v.ID, err)
	}
	if sregs.EFER&eferLMA == 0 || sregs.CS.L == 0 {
		return false, nil // only 64-bit mode is decoded
	}
	load := m.reg&7 == digitLdmxcsr
	name := "stmxcsr"
	if load {
		name = "ldmxcsr"
	}
	switch {
	case sregs.CR0&cr0EM != 0 || sregs.CR4&cr4OSFXSR == 0:
		return v.raise(name, vectorUD, nil)
	case sregs.CR0&cr0TS != 0:
		return v.raise(name, vectorNM, nil)
	}
	linear := m.linear(regs, &sregs)
	paging := Paging{CR0: sregs.CR0, CR3: sregs.CR3, CR4: sregs.CR4, EFER: sregs.EFER}
	pa, err := operandPages(v.Mem, paging, linear)
	if err != nil {
		return false, v.report(fmt.Sprintf("%s: operand at %#x: %v (the guest would take a page fault, which govmm does not deliver)", name, linear, err), insn)
	}
	// KVM_GET/SET_XSAVE rather than KVM_GET/SET_FPU: on PVM hosts the
	// latter reads MXCSR as 0 and its MXCSR does not reach the guest.
	var xs kvm.XSAVE
	if err := v.HW.GetXSAVE(&xs); err != nil {
		return false, fmt.Errorf("vcpu %d: %s: %w", v.ID, name, err)
	}
	var buf [4]byte
	if load {
		for i := range buf {
			if err := v.Mem.ReadAt(buf[i:i+1], pa[i]); err != nil {
				return false, fmt.Errorf("vcpu %d: ldmxcsr at rip %#x: %w", v.ID, regs.RIP, err)
			}
		}
		val := binary.LittleEndian.Uint32(buf[:])
		mask := xs.MXCSRMask()
		if mask == 0 {
			mask = defaultMXCSRMask
		}
		if val&^mask != 0 {
			code := uint32(0)
			return v.raise(name, vectorGP, &code)
		}
		xs.SetMXCSR(val)
		if err := v.HW.SetXSAVE(&xs); err != nil {
			return false, fmt.Errorf("vcpu %d: ldmxcsr: %w", v.ID, err)
		}
	} else {
		binary.LittleEndian.PutUint32(buf[:], xs.MXCSR())
		for i := range buf {
			if err := v.Mem.WriteAt(buf[i:i+1], pa[i]); err != nil {
				return false, fmt.Errorf("vcpu %d: stmxcsr at rip %#x: %w", v.ID, regs.RIP, err)
			}
		}
	}
	regs.RIP += uint64(m.length)
	if err := v.HW.SetRegs(regs); err != nil {
		return false, fmt.Errorf("vcpu %d: stepping over %s: %w", v.ID, name, err)
	}
	if load {
		v.Fixups.Ldmxcsr.Add(1)
	} else {
		v.Fixups.Stmxcsr.Add(1)
	}
	return true, nil
}

// operandPages translates each byte of a 4-byte operand at linear, so an
// operand that straddles two pages reaches both.
func operandPages(mem *memory.Memory, p Paging, linear uint64) ([4]memory.GuestAddr, error) {
	var pa [4]memory.GuestAddr
	for i := range pa {
		a, err := Translate(mem, p, linear+uint64(i))
		if err != nil {
			return pa, err
		}
		pa[i] = a
	}
	return pa, nil
}

// raise delivers the exception the instruction takes instead of running:
// a fault, so RIP stays on the instruction. It counts as a fixup of its
// own kind, since the VMM did what hardware would.
func (v *VCPU) raise(name string, vector uint8, code *uint32) (bool, error) {
	if err := v.injectException(vector, code); err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	v.Fixups.Faults.Add(1)
	return true, nil
}
