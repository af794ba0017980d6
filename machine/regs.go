package machine

import (
	"encoding/binary"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm"
)

// kvmSegment converts the boot package's segment to KVM's layout.
func kvmSegment(s boot.Segment) kvm.Segment {
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	return kvm.Segment{
		Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type,
		Present: b(s.Present), DPL: s.DPL, DB: b(s.DB), S: b(s.S), L: b(s.L),
		G: b(s.G), AVL: b(s.AVL), Unusable: b(s.Unusable),
	}
}

// entryRegisters applies the boot entry state on top of the vCPU's reset
// state (sregs as KVM returned them, so the APIC base and the rest stay).
func entryRegisters(e *boot.EntryState, sregs *kvm.Sregs) kvm.Regs {
	sregs.CS, sregs.DS, sregs.ES = kvmSegment(e.CS), kvmSegment(e.DS), kvmSegment(e.ES)
	sregs.FS, sregs.GS, sregs.SS = kvmSegment(e.FS), kvmSegment(e.GS), kvmSegment(e.SS)
	sregs.TR, sregs.LDT = kvmSegment(e.TR), kvmSegment(e.LDT)
	sregs.GDT = kvm.DTable{Base: e.GDT.Base, Limit: e.GDT.Limit}
	sregs.IDT = kvm.DTable{Base: e.IDT.Base, Limit: e.IDT.Limit}
	sregs.CR0, sregs.CR3, sregs.CR4, sregs.EFER = e.CR0, e.CR3, e.CR4, e.EFER
	return kvm.Regs{RIP: e.RIP, RSP: e.RSP, RSI: e.RSI, RFLAGS: e.RFLAGS}
}

// initialFPU is the x87/SSE state after FNINIT and LDMXCSR of the default:
// all exceptions masked (FCW 0x37f, MXCSR 0x1f80).
func initialFPU() kvm.FPU {
	return kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}
}

// Local APIC registers and LVT delivery modes (Intel SDM vol. 3, 11.5.1).
const (
	apicLVTLINT0    = 0x350
	apicLVTLINT1    = 0x360
	lvtDeliveryMode = 0x700
	lvtMasked       = 1 << 16
	lvtExtINT       = 0x700
	lvtNMI          = 0x400
)

// virtualWire sets the boot vCPU's LAPIC as a PC's BIOS leaves it: LINT0
// takes the 8259 PIC's interrupts (ExtINT) and LINT1 is NMI, so a kernel
// that never programs the IOAPIC still gets the timer and the serial port.
func virtualWire(l *kvm.LAPICState) {
	set := func(off uint32, mode uint32) {
		v := binary.LittleEndian.Uint32(l.Regs[off:])
		v = v&^(lvtDeliveryMode|lvtMasked) | mode
		binary.LittleEndian.PutUint32(l.Regs[off:], v)
	}
	set(apicLVTLINT0, lvtExtINT)
	set(apicLVTLINT1, lvtNMI)
}
