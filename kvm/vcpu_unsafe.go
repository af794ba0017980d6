package kvm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newVCPU wraps vCPU fd f and its mapped kvm_run page.
func newVCPU(id int, f *os.File, run []byte) *VCPU {
	v := &VCPU{id: id, f: f, run: run}
	// Safe: run is a page-aligned mapping of at least runHeaderSize bytes
	// (CreateVM checked), so its first 4 bytes are an aligned uint32 that
	// lives until Close unmaps it.
	v.immediateExit = (*uint32)(unsafe.Pointer(&run[0]))
	return v
}

// ioctlStruct issues req with p, a pointer to the mirrored struct the
// request carries, and names the request in its error.
func (v *VCPU) ioctlStruct(name string, req uintptr, p unsafe.Pointer) error {
	if _, err := ioctlPtr(v.f, req, p); err != nil {
		return fmt.Errorf("%s on vCPU %d: %w", name, v.id, err)
	}
	return nil
}

// Each accessor below passes a pointer to the Go mirror of the struct its
// request carries; TestABIMatchesHeader checks the mirrors against the C layout.

// GetRegs reads the general-purpose registers (KVM_GET_REGS).
func (v *VCPU) GetRegs(r *Regs) error {
	return v.ioctlStruct("KVM_GET_REGS", kvmGetRegs, unsafe.Pointer(r)) // Safe: *Regs mirrors struct kvm_regs.
}

// SetRegs writes the general-purpose registers (KVM_SET_REGS).
func (v *VCPU) SetRegs(r *Regs) error {
	return v.ioctlStruct("KVM_SET_REGS", kvmSetRegs, unsafe.Pointer(r)) // Safe: *Regs mirrors struct kvm_regs.
}

// GetSregs reads the special registers (KVM_GET_SREGS).
func (v *VCPU) GetSregs(s *Sregs) error {
	return v.ioctlStruct("KVM_GET_SREGS", kvmGetSregs, unsafe.Pointer(s)) // Safe: *Sregs mirrors struct kvm_sregs.
}

// SetSregs writes the special registers (KVM_SET_SREGS).
func (v *VCPU) SetSregs(s *Sregs) error {
	return v.ioctlStruct("KVM_SET_SREGS", kvmSetSregs, unsafe.Pointer(s)) // Safe: *Sregs mirrors struct kvm_sregs.
}

// GetFPU reads the x87 and SSE state (KVM_GET_FPU).
func (v *VCPU) GetFPU(f *FPU) error {
	return v.ioctlStruct("KVM_GET_FPU", kvmGetFPU, unsafe.Pointer(f)) // Safe: *FPU mirrors struct kvm_fpu.
}

// SetFPU writes the x87 and SSE state (KVM_SET_FPU).
func (v *VCPU) SetFPU(f *FPU) error {
	return v.ioctlStruct("KVM_SET_FPU", kvmSetFPU, unsafe.Pointer(f)) // Safe: *FPU mirrors struct kvm_fpu.
}

// GetXSAVE reads the x87, SSE and extended state in the standard XSAVE
// layout (KVM_GET_XSAVE; needs KVM_CAP_XSAVE). It fails with EINVAL when
// the guest may use dynamic components (AMX), which govmm does not allow.
func (v *VCPU) GetXSAVE(x *XSAVE) error {
	return v.ioctlStruct("KVM_GET_XSAVE", kvmGetXSAVE, unsafe.Pointer(x)) // Safe: *XSAVE mirrors struct kvm_xsave.
}

// SetXSAVE writes it back (KVM_SET_XSAVE); XSTATE_BV says which
// components are loaded from x and which are put in their initial state.
func (v *VCPU) SetXSAVE(x *XSAVE) error {
	return v.ioctlStruct("KVM_SET_XSAVE", kvmSetXSAVE, unsafe.Pointer(x)) // Safe: *XSAVE mirrors struct kvm_xsave.
}

// GetLAPIC reads the local APIC's registers (KVM_GET_LAPIC); it needs
// VM.CreateIRQChip.
func (v *VCPU) GetLAPIC(l *LAPICState) error {
	return v.ioctlStruct("KVM_GET_LAPIC", kvmGetLAPIC, unsafe.Pointer(l)) // Safe: *LAPICState mirrors struct kvm_lapic_state.
}

// SetLAPIC writes the local APIC's registers (KVM_SET_LAPIC).
func (v *VCPU) SetLAPIC(l *LAPICState) error {
	return v.ioctlStruct("KVM_SET_LAPIC", kvmSetLAPIC, unsafe.Pointer(l)) // Safe: *LAPICState mirrors struct kvm_lapic_state.
}

// GetVCPUEvents reads pending exceptions, interrupts and NMIs
// (KVM_GET_VCPU_EVENTS).
func (v *VCPU) GetVCPUEvents(e *VCPUEvents) error {
	return v.ioctlStruct("KVM_GET_VCPU_EVENTS", kvmGetVCPUEvents, unsafe.Pointer(e)) // Safe: *VCPUEvents mirrors struct kvm_vcpu_events.
}

// SetVCPUEvents writes them back (KVM_SET_VCPU_EVENTS); e.Flags says which
// optional fields count.
func (v *VCPU) SetVCPUEvents(e *VCPUEvents) error {
	return v.ioctlStruct("KVM_SET_VCPU_EVENTS", kvmSetVCPUEvents, unsafe.Pointer(e)) // Safe: *VCPUEvents mirrors struct kvm_vcpu_events.
}

// GetMPState reads the vCPU's multiprocessing state (KVM_GET_MP_STATE).
func (v *VCPU) GetMPState(s *MPState) error {
	return v.ioctlStruct("KVM_GET_MP_STATE", kvmGetMPState, unsafe.Pointer(s)) // Safe: *MPState mirrors struct kvm_mp_state.
}

// SetMPState sets it (KVM_SET_MP_STATE).
func (v *VCPU) SetMPState(s *MPState) error {
	return v.ioctlStruct("KVM_SET_MP_STATE", kvmSetMPState, unsafe.Pointer(s)) // Safe: *MPState mirrors struct kvm_mp_state.
}

// SetGuestDebug turns single-stepping and breakpoints that exit to the VMM
// on or off (KVM_SET_GUEST_DEBUG); the events arrive as *DebugExit.
func (v *VCPU) SetGuestDebug(d *GuestDebug) error {
	return v.ioctlStruct("KVM_SET_GUEST_DEBUG", kvmSetGuestDebug, unsafe.Pointer(d)) // Safe: *GuestDebug mirrors struct kvm_guest_debug.
}

// GetMSRs reads the MSRs named by entries[i].Index into entries[i].Data
// (KVM_GET_MSRS). It returns how many it read: KVM stops at the first MSR
// it does not know, so n < len(entries) names entries[n] as the culprit.
func (v *VCPU) GetMSRs(entries []MSREntry) (int, error) {
	buf := newMSRs(entries)
	// Safe: buf is a live slice holding a struct kvm_msrs with all entries.
	n, err := ioctlPtr(v.f, kvmGetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_MSRS (%d MSRs) on vCPU %d: %w", len(entries), v.id, err)
	}
	msrsData(buf, entries, int(n))
	return int(n), nil
}

// SetMSRs writes the MSRs in entries (KVM_SET_MSRS) and returns how many it
// wrote; as with GetMSRs, n < len(entries) names entries[n] as refused.
func (v *VCPU) SetMSRs(entries []MSREntry) (int, error) {
	buf := newMSRs(entries)
	// Safe: buf is a live slice holding a struct kvm_msrs with all entries.
	n, err := ioctlPtr(v.f, kvmSetMSRs, unsafe.Pointer(&buf[0]))
	if err != nil {
		return 0, fmt.Errorf("KVM_SET_MSRS (%d MSRs) on vCPU %d: %w", len(entries), v.id, err)
	}
	return int(n), nil
}

// SetCPUID2 sets what CPUID tells the guest (KVM_SET_CPUID2). Call it before
// the first Run.
func (v *VCPU) SetCPUID2(entries []CPUIDEntry) error {
	buf := newCPUID2(entries, len(entries))
	// Safe: buf is a live slice holding a struct kvm_cpuid2 with all entries.
	if _, err := ioctlPtr(v.f, kvmSetCPUID2, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2 (%d entries) on vCPU %d: %w", len(entries), v.id, err)
	}
	return nil
}

// GetCPUID2 reads back the CPUID table KVM holds for the vCPU
// (KVM_GET_CPUID2): what the guest's CPUID returns. KVM may have changed
// entries given to SetCPUID2 (kvm_pvm does, see DESIGN.md), so a VMM that
// hides features reads the table back to learn what the guest will see.
// The buffer grows while KVM says E2BIG.
func (v *VCPU) GetCPUID2() ([]CPUIDEntry, error) {
	for n := 64; ; n *= 2 {
		buf := newCPUID2(nil, n)
		// Safe: buf is a live slice holding a struct kvm_cpuid2 with room
		// for the n entries its nent says the kernel may write.
		_, err := ioctlPtr(v.f, kvmGetCPUID2, unsafe.Pointer(&buf[0]))
		if errors.Is(err, unix.E2BIG) && n < maxCPUIDEntries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_CPUID2 with room for %d entries on vCPU %d: %w", n, v.id, err)
		}
		return cpuid2Entries(buf), nil
	}
}
