package vcpu

import (
	"reflect"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestSaveRestoreState(t *testing.T) {
	src := &fakeStateHW{fakeHW: newFakeHW(), msrs: map[uint32]uint64{0xc0000082: 0xffffffff81000000, 0x10: 12345}}
	src.regs = kvm.Regs{RAX: 1, RIP: 0x100000, RSP: 0x8000}
	src.sregs.CR3 = 0x9000
	src.fpu.FCW = 0x37f
	src.lapic.Regs[0x20] = 7
	src.mp.State = 3
	src.events.Exception.Nr = 14
	v := New(Config{ID: 0, HW: src})
	s, err := v.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.MSRs) != 2 {
		t.Errorf("SaveState kept %d MSRs, want the 2 the host knows", len(s.MSRs))
	}
	dst := &fakeStateHW{fakeHW: newFakeHW(), msrs: map[uint32]uint64{}}
	w := New(Config{ID: 1, HW: dst})
	if err := w.RestoreState(s); err != nil {
		t.Fatal(err)
	}
	again, err := w.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, s) {
		t.Errorf("state after RestoreState differs:\n got %+v\nwant %+v", again.Regs, s.Regs)
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
