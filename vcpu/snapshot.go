package vcpu

import (
	"fmt"

	"github.com/govmm/govmm/kvm"
)

// StateHardware is what saving and restoring a vCPU needs on top of
// Hardware. *kvm.VCPU implements it.
type StateHardware interface {
	Hardware
	SetSregs(*kvm.Sregs) error
	GetFPU(*kvm.FPU) error
	SetFPU(*kvm.FPU) error
	GetLAPIC(*kvm.LAPICState) error
	SetLAPIC(*kvm.LAPICState) error
	GetMPState(*kvm.MPState) error
	SetMPState(*kvm.MPState) error
	GetMSRs([]kvm.MSREntry) (int, error)
	SetMSRs([]kvm.MSREntry) (int, error)
}

// State is a vCPU's architectural state as plain values: what a snapshot
// or a migration stream carries, and what RestoreState rebuilds from.
type State struct {
	Regs   kvm.Regs
	Sregs  kvm.Sregs
	FPU    kvm.FPU
	LAPIC  kvm.LAPICState
	Events kvm.VCPUEvents
	MP     kvm.MPState
	MSRs   []kvm.MSREntry // only those this host's KVM supports
}

// SavedMSRs are the model-specific registers a State carries: the syscall
// and sysenter entry points, the swapped GS base, the TSC, PAT and
// MISC_ENABLE, and KVM's paravirtual clock.
var SavedMSRs = []uint32{
	0x10,       // IA32_TIME_STAMP_COUNTER
	0x174,      // IA32_SYSENTER_CS
	0x175,      // IA32_SYSENTER_ESP
	0x176,      // IA32_SYSENTER_EIP
	0x1a0,      // IA32_MISC_ENABLE
	0x277,      // IA32_PAT
	0xc0000081, // STAR
	0xc0000082, // LSTAR
	0xc0000083, // CSTAR
	0xc0000084, // SFMASK
	0xc0000102, // KERNEL_GS_BASE
	0x4b564d00, // MSR_KVM_WALL_CLOCK_NEW
	0x4b564d01, // MSR_KVM_SYSTEM_TIME_NEW
}

// stateHW returns the hardware as StateHardware, if it is one, and checks
// the vCPU is not inside KVM_RUN.
func (v *VCPU) stateHW(op string) (StateHardware, error) {
	if s := v.RunState(); s == Running {
		return nil, fmt.Errorf("vcpu %d: %s while running: pause it first", v.ID, op)
	}
	hw, ok := v.HW.(StateHardware)
	if !ok {
		return nil, fmt.Errorf("vcpu %d: %s: its hardware (%T) cannot save state", v.ID, op, v.HW)
	}
	return hw, nil
}

// SaveState reads the vCPU's state. The vCPU must not be running: pause
// it, or call before Run or after it returned.
func (v *VCPU) SaveState() (State, error) {
	hw, err := v.stateHW("saving state")
	if err != nil {
		return State{}, err
	}
	var s State
	steps := []struct {
		name string
		get  func() error
	}{
		{"registers", func() error { return hw.GetRegs(&s.Regs) }},
		{"special registers", func() error { return hw.GetSregs(&s.Sregs) }},
		{"FPU", func() error { return hw.GetFPU(&s.FPU) }},
		{"LAPIC", func() error { return hw.GetLAPIC(&s.LAPIC) }},
		{"events", func() error { return hw.GetVCPUEvents(&s.Events) }},
		{"MP state", func() error { return hw.GetMPState(&s.MP) }},
	}
	for _, st := range steps {
		if err := st.get(); err != nil {
			return State{}, fmt.Errorf("vcpu %d: saving %s: %w", v.ID, st.name, err)
		}
	}
	// KVM_GET_MSRS stops at the first MSR it does not know, so read them
	// one at a time and keep those the host supports.
	for _, idx := range SavedMSRs {
		e := []kvm.MSREntry{{Index: idx}}
		n, err := hw.GetMSRs(e)
		if err != nil {
			return State{}, fmt.Errorf("vcpu %d: saving MSR %#x: %w", v.ID, idx, err)
		}
		if n == 1 {
			s.MSRs = append(s.MSRs, e[0])
		}
	}
	return s, nil
}

// RestoreState loads s into the vCPU, in the order KVM needs: special
// registers before general ones, the LAPIC before MP state and events.
func (v *VCPU) RestoreState(s State) error {
	hw, err := v.stateHW("restoring state")
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		set  func() error
	}{
		{"special registers", func() error { return hw.SetSregs(&s.Sregs) }},
		{"registers", func() error { return hw.SetRegs(&s.Regs) }},
		{"FPU", func() error { return hw.SetFPU(&s.FPU) }},
		{"MSRs", func() error {
			n, err := hw.SetMSRs(s.MSRs)
			if err == nil && n != len(s.MSRs) {
				err = fmt.Errorf("KVM took %d of %d (the first refused is %#x)", n, len(s.MSRs), s.MSRs[n].Index)
			}
			return err
		}},
		{"LAPIC", func() error { return hw.SetLAPIC(&s.LAPIC) }},
		{"MP state", func() error { return hw.SetMPState(&s.MP) }},
		{"events", func() error { return hw.SetVCPUEvents(&s.Events) }},
	}
	for _, st := range steps {
		if err := st.set(); err != nil {
			return fmt.Errorf("vcpu %d: restoring %s: %w", v.ID, st.name, err)
		}
	}
	return nil
}
