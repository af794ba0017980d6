package vcpu

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
)

// snapHW is a vCPU's whole saveable state, kept as KVM would keep it,
// with a log of the calls that read and wrote it.
type snapHW struct {
	*fakeStateHW
	xcrs   kvm.XCRs
	debug  kvm.DebugRegs
	tscKHz uint32
	cpuid  []kvm.CPUIDEntry
	// refuseSet is an MSR SetMSRs stops at, 0 for none; fixedTSC makes
	// SetTSCKHz fail (no KVM_CAP_TSC_CONTROL).
	refuseSet uint32
	fixedTSC  bool
	calls     []string
}

func newSnapHW(msrs map[uint32]uint64) *snapHW {
	return &snapHW{fakeStateHW: &fakeStateHW{fakeHW: newFakeHW(), msrs: msrs}, tscKHz: 2600000}
}

func (f *snapHW) log(c string) { f.calls = append(f.calls, c) }

func (f *snapHW) GetMPState(p *kvm.MPState) error {
	f.log("get mp")
	return f.fakeStateHW.GetMPState(p)
}
func (f *snapHW) SetMPState(p *kvm.MPState) error {
	f.log("set mp")
	return f.fakeStateHW.SetMPState(p)
}
func (f *snapHW) GetRegs(r *kvm.Regs) error   { f.log("get regs"); return f.fakeHW.GetRegs(r) }
func (f *snapHW) SetRegs(r *kvm.Regs) error   { f.log("set regs"); return f.fakeHW.SetRegs(r) }
func (f *snapHW) GetSregs(s *kvm.Sregs) error { f.log("get sregs"); return f.fakeHW.GetSregs(s) }
func (f *snapHW) SetSregs(s *kvm.Sregs) error { f.log("set sregs"); return f.fakeStateHW.SetSregs(s) }
func (f *snapHW) GetXSAVE(x *kvm.XSAVE) error { f.log("get xsave"); return f.fakeHW.GetXSAVE(x) }
func (f *snapHW) SetXSAVE(x *kvm.XSAVE) error { f.log("set xsave"); return f.fakeHW.SetXSAVE(x) }
func (f *snapHW) GetXCRs(x *kvm.XCRs) error   { f.log("get xcrs"); *x = f.xcrs; return nil }
func (f *snapHW) SetXCRs(x *kvm.XCRs) error   { f.log("set xcrs"); f.xcrs = *x; return nil }
func (f *snapHW) GetDebugRegs(d *kvm.DebugRegs) error {
	f.log("get debugregs")
	*d = f.debug
	return nil
}
func (f *snapHW) SetDebugRegs(d *kvm.DebugRegs) error {
	f.log("set debugregs")
	f.debug = *d
	return nil
}
func (f *snapHW) GetLAPIC(l *kvm.LAPICState) error {
	f.log("get lapic")
	return f.fakeStateHW.GetLAPIC(l)
}
func (f *snapHW) SetLAPIC(l *kvm.LAPICState) error {
	f.log("set lapic")
	return f.fakeStateHW.SetLAPIC(l)
}
func (f *snapHW) GetTSCKHz() (uint32, error) { f.log("get tsc"); return f.tscKHz, nil }
func (f *snapHW) SetTSCKHz(k uint32) error {
	f.log("set tsc")
	if f.fixedTSC {
		return errors.New("KVM_SET_TSC_KHZ: invalid argument")
	}
	f.tscKHz = k
	return nil
}
func (f *snapHW) GetCPUID2() ([]kvm.CPUIDEntry, error) {
	f.log("get cpuid")
	return slices.Clone(f.cpuid), nil
}
func (f *snapHW) SetCPUID2(t []kvm.CPUIDEntry) error {
	f.log("set cpuid")
	f.cpuid = slices.Clone(t)
	return nil
}
func (f *snapHW) GetMSRs(es []kvm.MSREntry) (int, error) {
	f.log("get msrs")
	return f.fakeStateHW.GetMSRs(es)
}
func (f *snapHW) SetMSRs(es []kvm.MSREntry) (int, error) {
	f.log("set msrs " + msrNames(es))
	for i, e := range es {
		if e.Index == f.refuseSet {
			return i, nil
		}
		f.msrs[e.Index] = e.Data
	}
	return len(es), nil
}
func (f *snapHW) GetVCPUEvents(e *kvm.VCPUEvents) error {
	f.log("get events")
	return f.fakeHW.GetVCPUEvents(e)
}
func (f *snapHW) SetVCPUEvents(e *kvm.VCPUEvents) error {
	f.log("set events")
	return f.fakeHW.SetVCPUEvents(e)
}

// msrNames lists the MSRs' indices as "10,6e0".
func msrNames(es []kvm.MSREntry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("%x", e.Index))
	}
	return strings.Join(s, ",")
}

// TestSaveStateOrder checks the order SaveState reads a vCPU in (MP state
// first, events last) and RestoreState writes one (CPUID first, the LAPIC
// before the MSRs, IA32_TSC_DEADLINE last of the MSRs, events last), and
// that a restore into a second vCPU gives back the same State.
func TestSaveStateOrder(t *testing.T) {
	src := newSnapHW(map[uint32]uint64{0x10: 12345, MSRTSCDeadline: 99999, 0xc0000082: 0xffffffff81000000})
	src.regs = kvm.Regs{RAX: 1, RIP: 0x100000, RSP: 0x8000}
	src.sregs.CR3 = 0x9000
	src.xsave.SetMXCSR(0x1f80)
	src.xcrs = kvm.XCRs{NXCRs: 1, XCRs: [kvm.MaxXCRs]kvm.XCR{{XCR: 0, Value: 7}}}
	src.debug.DR7 = 0x400
	src.lapic.Regs[0x20] = 7
	src.mp.State = kvm.MPStateHalted
	src.events.Exception.Nr = 14
	src.cpuid = []kvm.CPUIDEntry{{Function: 1, EAX: 0x806f8}}
	// The deadline first in KVM's list, and an MSR this vCPU lacks.
	v := New(Config{ID: 0, HW: src, MSRs: []uint32{MSRTSCDeadline, 0x10, 0x3a, 0xc0000082}})
	s, err := v.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	wantGets := []string{"get mp", "get regs", "get sregs", "get xsave", "get xcrs", "get debugregs", "get lapic", "get tsc", "get cpuid", "get msrs", "get msrs", "get events"}
	if !slices.Equal(src.calls, wantGets) {
		t.Errorf("SaveState calls = %q, want %q", src.calls, wantGets)
	}
	var saved []uint32
	for _, m := range s.MSRs {
		saved = append(saved, m.Index)
	}
	if want := []uint32{0x10, 0xc0000082, MSRTSCDeadline}; !slices.Equal(saved, want) {
		t.Errorf("SaveState MSRs = %#x, want %#x (0x3a unknown to the vCPU, the deadline last)", saved, want)
	}

	dst := newSnapHW(map[uint32]uint64{})
	dst.tscKHz = 2000000
	w := New(Config{ID: 1, HW: dst})
	if err := w.RestoreState(s); err != nil {
		t.Fatal(err)
	}
	wantSets := []string{"get cpuid", "set cpuid", "get tsc", "set tsc", "set mp", "set sregs", "set regs", "set xsave", "set xcrs", "set debugregs", "set lapic", "set msrs 10,c0000082,6e0", "set events"}
	if !slices.Equal(dst.calls, wantSets) {
		t.Errorf("RestoreState calls = %q, want %q", dst.calls, wantSets)
	}
	if got := dst.events.Flags & vcpuEventsRestored; got != vcpuEventsRestored {
		t.Errorf("RestoreState events flags = %#x, want NMI pending and SIPI vector flagged", dst.events.Flags)
	}
	dst.calls = nil
	w.MSRs = v.MSRs
	again, err := w.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	again.Events.Flags &^= vcpuEventsRestored
	if !reflect.DeepEqual(again, s) {
		t.Errorf("SaveState after RestoreState differs:\n got %+v\nwant %+v", again, s)
	}
	if !slices.Equal(w.CPUID, s.CPUID) {
		t.Errorf("vCPU's CPUID after RestoreState = %v, want the state's %v", w.CPUID, s.CPUID)
	}
}

// TestRestoreStateErrors checks what RestoreState says when KVM refuses
// part of a state.
func TestRestoreStateErrors(t *testing.T) {
	tests := []struct {
		name string
		hw   func(*snapHW)
		want string
	}{
		{"an MSR this host lacks", func(h *snapHW) { h.refuseSet = 0xc0000082 }, "refused MSR 0xc0000082"},
		{"a TSC it cannot scale", func(h *snapHW) { h.fixedTSC, h.tscKHz = true, 1000000 }, "TSC runs at 2600000 kHz and this host's at 1000000 kHz"},
	}
	src := newSnapHW(map[uint32]uint64{0x10: 1, 0xc0000082: 2})
	s, err := New(Config{HW: src, MSRs: []uint32{0x10, 0xc0000082}}).SaveState()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newSnapHW(map[uint32]uint64{})
			tt.hw(dst)
			err := New(Config{ID: 2, HW: dst}).RestoreState(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "vcpu 2: restoring ") {
				t.Errorf("RestoreState() = %v, want an error naming the vCPU and saying %q", err, tt.want)
			}
		})
	}
}

func TestSaveStateNeedsAPausedVCPU(t *testing.T) {
	v := New(Config{ID: 0, HW: newFakeHW()})
	if _, err := v.SaveState(); err == nil || !strings.Contains(err.Error(), "cannot save state") {
		t.Errorf("SaveState on hardware without state accessors = %v, want an error saying so", err)
	}
	v.state.Store(int32(Running))
	if _, err := v.SaveState(); err == nil || !strings.Contains(err.Error(), "pause it first") {
		t.Errorf("SaveState while running = %v, want an error saying to pause", err)
	}
}

// TestReadMSRsSkipsRefused checks readMSRs reads on past each MSR KVM
// stops at, in one call per run of readable ones.
func TestReadMSRsSkipsRefused(t *testing.T) {
	tests := []struct {
		known map[uint32]uint64
		list  []uint32
		want  []uint32
		calls int
	}{
		{map[uint32]uint64{1: 1, 2: 2, 3: 3}, []uint32{1, 2, 3}, []uint32{1, 2, 3}, 1},
		{map[uint32]uint64{1: 1, 3: 3}, []uint32{1, 2, 3}, []uint32{1, 3}, 2},
		{map[uint32]uint64{}, []uint32{1, 2}, nil, 2},
		{map[uint32]uint64{2: 2}, []uint32{1, 2, 5}, []uint32{2}, 2},
		{map[uint32]uint64{}, nil, nil, 0},
	}
	for _, tt := range tests {
		hw := newSnapHW(tt.known)
		got, err := readMSRs(hw, tt.list)
		var idx []uint32
		for _, e := range got {
			idx = append(idx, e.Index)
			if e.Data != tt.known[e.Index] {
				t.Errorf("readMSRs(%v) MSR %d = %d, want %d", tt.list, e.Index, e.Data, tt.known[e.Index])
			}
		}
		if err != nil || !slices.Equal(idx, tt.want) || len(hw.calls) != tt.calls {
			t.Errorf("readMSRs(%v) = %v, %v in %d calls, want %v in %d", tt.list, idx, err, len(hw.calls), tt.want, tt.calls)
		}
	}
}
