package vcpu

import (
	"fmt"
	"sync/atomic"

	"github.com/govmm/govmm/kvm"
)

// Fixups counts the emulation failures the VMM handled itself instead of
// stopping the guest. On PVM hosts KVM emulates guest ring-0 code, and its
// emulator gives up on a few instructions that hardware would run; for
// those whose effect is simple the VMM performs it.
type Fixups struct {
	Int3    atomic.Uint64 // int3: #BP delivered to the guest
	Fwait   atomic.Uint64 // fwait: stepped over (no x87 exception is ever pending)
	Ldmxcsr atomic.Uint64 // ldmxcsr: MXCSR loaded from guest memory
	Stmxcsr atomic.Uint64 // stmxcsr: MXCSR stored to guest memory
	// Faults counts instructions of the kinds above that raised the
	// exception hardware would have (#GP for reserved MXCSR bits, #UD,
	// #NM) instead of running.
	Faults atomic.Uint64
}

// String lists the counts, for a report at exit.
func (f *Fixups) String() string {
	return fmt.Sprintf("int3=%d fwait=%d ldmxcsr=%d stmxcsr=%d faults=%d",
		f.Int3.Load(), f.Fwait.Load(), f.Ldmxcsr.Load(), f.Stmxcsr.Load(), f.Faults.Load())
}

// Total is the number of fixups of every kind.
func (f *Fixups) Total() uint64 {
	return f.Int3.Load() + f.Fwait.Load() + f.Ldmxcsr.Load() + f.Stmxcsr.Load() + f.Faults.Load()
}

// Instruction bytes that have a fixup.
const (
	opInt3  = 0xCC
	opFwait = 0x9B
)

// vectorBP is the breakpoint exception, #BP.
const vectorBP = 3

// applyFixup performs the effect of the failed instruction if it is one the
// VMM knows. insn may be empty, in which case it is read at RIP.
func (v *VCPU) applyFixup(insn []byte) (bool, error) {
	var regs kvm.Regs
	if err := v.HW.GetRegs(&regs); err != nil {
		return false, fmt.Errorf("vcpu %d: reading registers for an emulation failure: %w", v.ID, err)
	}
	if len(insn) == 0 {
		insn = v.fetchInsn(regs.RIP)
	}
	if len(insn) == 0 {
		return false, nil
	}
	switch insn[0] {
	case opInt3:
		// #BP is a trap: the return address is the byte after int3.
		regs.RIP++
		if err := v.HW.SetRegs(&regs); err != nil {
			return false, fmt.Errorf("vcpu %d: stepping over int3: %w", v.ID, err)
		}
		if err := v.injectException(vectorBP, nil); err != nil {
			return false, err
		}
		v.Fixups.Int3.Add(1)
		return true, nil
	case opFwait:
		regs.RIP++
		if err := v.HW.SetRegs(&regs); err != nil {
			return false, fmt.Errorf("vcpu %d: stepping over fwait: %w", v.ID, err)
		}
		v.Fixups.Fwait.Add(1)
		return true, nil
	}
	return v.fixupMXCSR(insn, &regs)
}

// injectException queues an exception for delivery at the next entry,
// with an error code when code is not nil.
func (v *VCPU) injectException(vector uint8, code *uint32) error {
	var ev kvm.VCPUEvents
	if err := v.HW.GetVCPUEvents(&ev); err != nil {
		return fmt.Errorf("vcpu %d: reading events to inject vector %d: %w", v.ID, vector, err)
	}
	ev.Exception.Injected = 1
	ev.Exception.Nr = vector
	ev.Exception.HasErrorCode = 0
	ev.Exception.ErrorCode = 0
	if code != nil {
		ev.Exception.HasErrorCode = 1
		ev.Exception.ErrorCode = *code
	}
	if err := v.HW.SetVCPUEvents(&ev); err != nil {
		return fmt.Errorf("vcpu %d: injecting vector %d: %w", v.ID, vector, err)
	}
	return nil
}
