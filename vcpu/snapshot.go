package vcpu

import (
	"fmt"
	"slices"

	"github.com/govmm/govmm/kvm"
)

// StateHardware is what saving and restoring a vCPU needs on top of
// Hardware. *kvm.VCPU implements it.
type StateHardware interface {
	Hardware
	SetSregs(*kvm.Sregs) error
	GetLAPIC(*kvm.LAPICState) error
	SetLAPIC(*kvm.LAPICState) error
	GetMPState(*kvm.MPState) error
	SetMPState(*kvm.MPState) error
	GetMSRs([]kvm.MSREntry) (int, error)
	SetMSRs([]kvm.MSREntry) (int, error)
	GetXCRs(*kvm.XCRs) error
	SetXCRs(*kvm.XCRs) error
	GetDebugRegs(*kvm.DebugRegs) error
	SetDebugRegs(*kvm.DebugRegs) error
	GetTSCKHz() (uint32, error)
	SetTSCKHz(uint32) error
	GetCPUID2() ([]kvm.CPUIDEntry, error)
	SetCPUID2([]kvm.CPUIDEntry) error
}

// State is a vCPU's architectural state as plain values: what a snapshot
// or a migration stream carries, and what RestoreState rebuilds a vCPU
// from, in this VM or a fresh one in another process. Its fields are in
// the order SaveState reads them (see there).
type State struct {
	MP    kvm.MPState
	Regs  kvm.Regs
	Sregs kvm.Sregs
	// XSAVE holds x87, SSE, AVX and the other XSAVE components, MXCSR
	// included (KVM_GET_FPU would lose AVX, and reads MXCSR as 0 on PVM).
	XSAVE  kvm.XSAVE
	XCRs   kvm.XCRs
	Debug  kvm.DebugRegs
	LAPIC  kvm.LAPICState
	TSCKHz uint32 // the guest TSC's frequency
	// CPUID is the table the guest's CPUID answered from: a restored
	// vCPU answers the same, and a host that lacks one of its features
	// cannot take it (machine checks).
	CPUID []kvm.CPUIDEntry
	// MSRs are every MSR KVM saves for a vCPU (KVM_GET_MSR_INDEX_LIST)
	// that this vCPU has, IA32_TSC_DEADLINE last.
	MSRs   []kvm.MSREntry
	Events kvm.VCPUEvents
}

// MSRTSCDeadline is IA32_TSC_DEADLINE: the LAPIC timer's deadline in
// TSC-deadline mode. It is saved and restored last: KVM arms the timer
// only when the LAPIC is in that mode (restored before the MSRs) and
// measures the deadline on the guest TSC (IA32_TSC, restored before it).
const MSRTSCDeadline = 0x6e0

// SavedMSRs is the list SaveState uses when Config.MSRs is nil: the
// syscall and sysenter entry points, the swapped GS base, the TSC, PAT,
// MISC_ENABLE and KVM's paravirtual clock. The machine gives KVM's own
// list (KVM_GET_MSR_INDEX_LIST) instead.
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

// msrList is the MSRs to save, IA32_TSC_DEADLINE moved last.
func (v *VCPU) msrList() []uint32 {
	list := v.MSRs
	if list == nil {
		list = SavedMSRs
	}
	out := make([]uint32, 0, len(list))
	deadline := false
	for _, idx := range list {
		if idx == MSRTSCDeadline {
			deadline = true
			continue
		}
		out = append(out, idx)
	}
	if deadline {
		out = append(out, MSRTSCDeadline)
	}
	return out
}

// SaveState reads the vCPU's state. The vCPU must not be running: pause
// it, or call before Run or after it returned.
//
// The order is the one Firecracker and Cloud Hypervisor found safe. MP
// state comes first: reading it makes KVM take pending INIT and SIPI
// events (kvm_apic_accept_events), which change the registers read after
// it. The events come last, after everything whose reading could still
// queue one.
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
		{"MP state", func() error { return hw.GetMPState(&s.MP) }},
		{"registers", func() error { return hw.GetRegs(&s.Regs) }},
		{"special registers", func() error { return hw.GetSregs(&s.Sregs) }},
		{"XSAVE state", func() error { return hw.GetXSAVE(&s.XSAVE) }},
		{"XCRs", func() error { return hw.GetXCRs(&s.XCRs) }},
		{"debug registers", func() error { return hw.GetDebugRegs(&s.Debug) }},
		{"LAPIC", func() error { return hw.GetLAPIC(&s.LAPIC) }},
		{"TSC frequency", func() (err error) { s.TSCKHz, err = hw.GetTSCKHz(); return err }},
		{"CPUID", func() (err error) { s.CPUID, err = hw.GetCPUID2(); return err }},
		{"MSRs", func() (err error) { s.MSRs, err = readMSRs(hw, v.msrList()); return err }},
		{"events", func() error { return hw.GetVCPUEvents(&s.Events) }},
	}
	for _, st := range steps {
		if err := st.get(); err != nil {
			return State{}, fmt.Errorf("vcpu %d: saving %s: %w", v.ID, st.name, err)
		}
	}
	return s, nil
}

// readMSRs reads the MSRs in list in one call where it can. KVM_GET_MSRS
// stops at the first MSR it cannot read (one KVM lists but this vCPU's
// CPUID does not have): that one is left out and the rest read on.
func readMSRs(hw StateHardware, list []uint32) ([]kvm.MSREntry, error) {
	es := make([]kvm.MSREntry, len(list))
	for i, idx := range list {
		es[i].Index = idx
	}
	out := es[:0:0]
	for rest := es; len(rest) > 0; {
		n, err := hw.GetMSRs(rest)
		if err != nil {
			return nil, err
		}
		n = min(max(n, 0), len(rest))
		out = append(out, rest[:n]...)
		rest = rest[min(n+1, len(rest)):] // skip the one refused
	}
	return out, nil
}

// vcpuEventsRestored are the optional fields of VCPUEvents that KVM
// always has and that GetVCPUEvents fills but does not flag: KVM_SET_
// VCPU_EVENTS applies them only when flagged.
const vcpuEventsRestored = kvm.VCPUEventValidNMIPending | kvm.VCPUEventValidSIPIVector

// RestoreState loads s into the vCPU, which must not have run since it
// was created if s holds a CPUID table different from its own (KVM takes
// a new table only before the first KVM_RUN).
//
// The order: CPUID first (KVM checks MSRs and XSAVE components against
// it), the TSC frequency, MP state, registers, XSAVE and XCRs, debug
// registers, the LAPIC before the MSRs (IA32_TSC_DEADLINE arms a timer
// only in the LAPIC mode that uses it), and the events last, which KVM
// would otherwise clear while setting the rest.
func (v *VCPU) RestoreState(s State) error {
	hw, err := v.stateHW("restoring state")
	if err != nil {
		return err
	}
	msrs := slices.Clone(s.MSRs)
	// A State from elsewhere may have the deadline anywhere.
	slices.SortStableFunc(msrs, func(a, b kvm.MSREntry) int {
		return boolInt(a.Index == MSRTSCDeadline) - boolInt(b.Index == MSRTSCDeadline)
	})
	events := s.Events
	events.Flags |= vcpuEventsRestored
	steps := []struct {
		name string
		set  func() error
	}{
		{"CPUID", func() error { return setCPUID(hw, s.CPUID) }},
		{"TSC frequency", func() error { return setTSCKHz(hw, s.TSCKHz) }},
		{"MP state", func() error { return hw.SetMPState(&s.MP) }},
		{"special registers", func() error { return hw.SetSregs(&s.Sregs) }},
		{"registers", func() error { return hw.SetRegs(&s.Regs) }},
		{"XSAVE state", func() error { return hw.SetXSAVE(&s.XSAVE) }},
		{"XCRs", func() error { return hw.SetXCRs(&s.XCRs) }},
		{"debug registers", func() error { return hw.SetDebugRegs(&s.Debug) }},
		{"LAPIC", func() error { return hw.SetLAPIC(&s.LAPIC) }},
		{"MSRs", func() error { return writeMSRs(hw, msrs) }},
		{"events", func() error { return hw.SetVCPUEvents(&events) }},
	}
	for _, st := range steps {
		if err := st.set(); err != nil {
			return fmt.Errorf("vcpu %d: restoring %s: %w", v.ID, st.name, err)
		}
	}
	if s.CPUID != nil {
		v.CPUID = slices.Clone(s.CPUID)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setCPUID sets the table unless it is empty (a State without one) or
// the one KVM already has.
func setCPUID(hw StateHardware, table []kvm.CPUIDEntry) error {
	if len(table) == 0 {
		return nil
	}
	have, err := hw.GetCPUID2()
	if err != nil {
		return err
	}
	if slices.Equal(have, table) {
		return nil
	}
	return hw.SetCPUID2(table)
}

// setTSCKHz sets the guest TSC's frequency when it differs from this
// vCPU's, and says what to do when KVM cannot.
func setTSCKHz(hw StateHardware, khz uint32) error {
	if khz == 0 {
		return nil
	}
	have, err := hw.GetTSCKHz()
	if err != nil {
		return err
	}
	if have == khz {
		return nil
	}
	if err := hw.SetTSCKHz(khz); err != nil {
		return fmt.Errorf("the state's TSC runs at %d kHz and this host's at %d kHz, which its KVM cannot scale to (it needs KVM_CAP_TSC_CONTROL): restore on a host whose TSC runs at the same frequency: %w", khz, have, err)
	}
	return nil
}

// writeMSRs writes every MSR, naming the first KVM refuses.
func writeMSRs(hw StateHardware, msrs []kvm.MSREntry) error {
	if len(msrs) == 0 {
		return nil
	}
	n, err := hw.SetMSRs(msrs)
	if err != nil {
		return err
	}
	if n < len(msrs) {
		return fmt.Errorf("KVM took %d of %d and refused MSR %#x (value %#x): the state comes from a host whose KVM has MSRs this one lacks", n, len(msrs), msrs[n].Index, msrs[n].Data)
	}
	return nil
}

// MSRTSC is IA32_TIME_STAMP_COUNTER, the guest's TSC.
const MSRTSC = 0x10

// TimeMSRs are the MSRs that hold the guest's time on the TSC: the TSC
// itself, and the LAPIC timer's deadline on it.
var TimeMSRs = []uint32{MSRTSC, MSRTSCDeadline}

// Time reads the guest's TSC and TSC deadline (the vCPU not running):
// with the kvmclock, the guest's sense of time, which a pause keeps
// (machine.Pause) and a restore puts back (SetTime). A vCPU without a
// TSC-deadline MSR gives the TSC alone.
func (v *VCPU) Time() ([]kvm.MSREntry, error) {
	hw, err := v.stateHW("reading the TSC")
	if err != nil {
		return nil, err
	}
	msrs, err := readMSRs(hw, TimeMSRs)
	if err != nil {
		return nil, fmt.Errorf("vcpu %d: reading the TSC: %w", v.ID, err)
	}
	return msrs, nil
}

// SetTime writes what Time read, the TSC before the deadline (which KVM
// measures on it). Writing every vCPU's time and then the kvmclock in
// one quick pass keeps the two clocks the guest compares in step.
func (v *VCPU) SetTime(msrs []kvm.MSREntry) error {
	hw, err := v.stateHW("setting the TSC")
	if err != nil {
		return err
	}
	var ordered []kvm.MSREntry
	for _, idx := range TimeMSRs {
		for _, m := range msrs {
			if m.Index == idx {
				ordered = append(ordered, m)
			}
		}
	}
	if err := writeMSRs(hw, ordered); err != nil {
		return fmt.Errorf("vcpu %d: setting the TSC: %w", v.ID, err)
	}
	return nil
}

// TimeOf picks the time MSRs out of a State's MSRs.
func TimeOf(s State) []kvm.MSREntry {
	var out []kvm.MSREntry
	for _, m := range s.MSRs {
		if slices.Contains(TimeMSRs, m.Index) {
			out = append(out, m)
		}
	}
	return out
}
