package kvm_test

import (
	"fmt"
	"testing"

	"github.com/govmm/govmm/kvm"
)

// DR6 and DR7 bits (Intel SDM vol. 3, 18.2).
const (
	dr6BS = 1 << 14 // single step
	dr6B0 = 1 << 0  // breakpoint 0 hit
	dr7L0 = 1 << 0  // breakpoint 0 enabled (execution, 1 byte: R/W0 = LEN0 = 0)
)

// TestGuestDebug: KVM_SET_GUEST_DEBUG single-steps realModeProgram one
// instruction per KVM_RUN (the port write exits on its own first), and
// a hardware breakpoint in DR0 stops it before the instruction there. The
// stepper and the gdb stub are built on these two.
func TestGuestDebug(t *testing.T) {
	s := openKVM(t)
	if n, err := s.CheckExtension(kvm.CapSetGuestDebug); err != nil || n == 0 {
		t.Fatalf("CheckExtension(%v) = %d, %v, want > 0", kvm.CapSetGuestDebug, n, err)
	}
	t.Run("single-step", func(t *testing.T) {
		v := realModeVCPU(t, s, createVM(t, s))
		if err := v.SetGuestDebug(&kvm.GuestDebug{Control: kvm.GuestDebugEnable | kvm.GuestDebugSingleStep}); err != nil {
			t.Fatal(err)
		}
		// mov al (0x1000), mov dx (0x1002), out (0x1005), mov [0x2000] (0x1006), hlt (0x1009).
		var got []string
		for len(got) < 6 {
			e, err := v.Run()
			if err != nil {
				t.Fatal(err)
			}
			switch e := e.(type) {
			case *kvm.DebugExit:
				if e.Exception != 1 || e.DR6&dr6BS == 0 {
					t.Fatalf("Run() = %v, want a single-step #DB (DR6.BS)", e)
				}
				got = append(got, fmt.Sprintf("step %#x", e.PC))
			case *kvm.IOExit:
				got = append(got, "out")
			default:
				t.Fatalf("Run() = %v, want a step or the OUT", e)
			}
			if got[len(got)-1] == "step 0x1009" { // at the hlt
				break
			}
		}
		// KVM's emulator completes an OUT before exiting to user space and
		// does not single-step past it (a FIXME in x86.c), so on hosts that
		// emulate real mode (PVM) the step after the OUT lands one
		// instruction further; with hardware virtualization the OUT exits
		// first and the step stops right after it.
		emulated := "[step 0x1002 step 0x1005 out step 0x1009]"
		hardware := "[step 0x1002 step 0x1005 out step 0x1006 step 0x1009]"
		if s := fmt.Sprint(got); s != emulated && s != hardware {
			t.Errorf("single-stepping the program gave %s, want %s or %s", s, emulated, hardware)
		}
	})
	t.Run("hardware breakpoint", func(t *testing.T) {
		v := realModeVCPU(t, s, createVM(t, s))
		d := kvm.GuestDebug{Control: kvm.GuestDebugEnable | kvm.GuestDebugUseHWBP}
		d.DebugReg[0] = 0x1006 // mov [0x2000], al
		d.DebugReg[7] = dr7L0
		if err := v.SetGuestDebug(&d); err != nil {
			t.Fatal(err)
		}
		for {
			e, err := v.Run()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := e.(*kvm.IOExit); ok {
				continue
			}
			de, ok := e.(*kvm.DebugExit)
			if !ok || de.PC != 0x1006 || de.DR6&dr6B0 == 0 {
				t.Fatalf("Run() = %v, want a #DB at 0x1006 with DR6.B0", e)
			}
			break
		}
	})
}
