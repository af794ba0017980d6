package vcpu

import (
	"fmt"

	"github.com/govmm/govmm/kvm"
)

// handle acts on one exit. It reports whether the loop must stop, and why.
func (v *VCPU) handle(exit kvm.Exit) (StopReason, bool, error) {
	switch e := exit.(type) {
	case *kvm.IOExit:
		v.handleIO(e)
	case *kvm.MMIOExit:
		if e.Write {
			v.MMIO.Write(e.Addr, e.Data)
		} else {
			v.MMIO.Read(e.Addr, e.Data)
		}
	case *kvm.InterruptedExit:
		// A kick or a stray signal; requests are served at the loop's top.
		v.HW.SetImmediateExit(false)
	case *kvm.HLTExit:
		// Only seen without an in-kernel irqchip: nothing can wake the
		// guest, so it is done.
		return StopHalt, true, nil
	case *kvm.ShutdownExit:
		return StopUnknown, true, v.report("triple fault: the guest took an exception it could not handle (KVM_EXIT_SHUTDOWN)", nil)
	case *kvm.SystemEventExit:
		switch e.Type {
		case kvm.SystemEventShutdown:
			return StopPowerOff, true, nil
		case kvm.SystemEventReset:
			return StopReset, true, nil
		}
		return StopUnknown, true, v.report(fmt.Sprintf("guest system event %v", e), nil)
	case *kvm.FailEntryExit:
		return StopUnknown, true, v.report(fmt.Sprintf("KVM could not enter the guest: hardware entry failure reason %#x on cpu %d; the initial register state is invalid for this host", e.Reason, e.CPU), nil)
	case *kvm.InternalErrorExit:
		return v.handleInternalError(e)
	case *kvm.DebugExit:
		return StopUnknown, true, v.report(fmt.Sprintf("debug exit %v with no debugger attached", e), nil)
	default:
		return StopUnknown, true, v.report(fmt.Sprintf("unhandled exit %v", exit), nil)
	}
	return StopUnknown, false, nil
}

// handleIO dispatches a port access; string instructions (rep ins/outs)
// arrive as Count back-to-back accesses of Size bytes.
func (v *VCPU) handleIO(e *kvm.IOExit) {
	size := int(e.Size)
	for i := 0; i+size <= len(e.Data); i += size {
		p := e.Data[i : i+size]
		if e.Out {
			v.IO.Write(uint64(e.Port), p)
		} else {
			v.IO.Read(uint64(e.Port), p)
		}
	}
}

// handleInternalError applies a known fixup for an emulation failure or
// stops with a report naming the instruction.
func (v *VCPU) handleInternalError(e *kvm.InternalErrorExit) (StopReason, bool, error) {
	if e.Suberror != kvm.InternalErrorEmulation {
		return StopUnknown, true, v.report(fmt.Sprintf("KVM internal error: %v", e), nil)
	}
	insn := e.Instruction()
	fixed, err := v.applyFixup(insn)
	if err != nil {
		return StopUnknown, true, err
	}
	if fixed {
		return StopUnknown, false, nil
	}
	return StopUnknown, true, v.report("KVM could not emulate a guest instruction (on PVM hosts guest ring 0 is emulated; hide the feature through CPUID or add a fixup)", insn)
}
