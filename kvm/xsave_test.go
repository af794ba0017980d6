package kvm_test

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestXSAVEAccessors(t *testing.T) {
	var x kvm.XSAVE
	x.Region[6], x.Region[7] = 0x1f80, 0xffff  // bytes 24 and 28
	x.Region[128], x.Region[129] = 0x1, 0x8000 // XSTATE_BV at byte 512: x87, and bit 47
	if x.MXCSR() != 0x1f80 || x.MXCSRMask() != 0xffff || x.XStateBV() != 0x8000_0000_0001 {
		t.Errorf("XSAVE accessors = mxcsr %#x mask %#x xstate_bv %#x, want 0x1f80 0xffff 0x800000000001", x.MXCSR(), x.MXCSRMask(), x.XStateBV())
	}
	x.SetMXCSR(0x7f80)
	if x.MXCSR() != 0x7f80 || x.XStateBV() != 0x8000_0000_0003 {
		t.Errorf("after SetMXCSR(0x7f80): mxcsr %#x xstate_bv %#x, want 0x7f80 and the SSE bit added (0x800000000003)", x.MXCSR(), x.XStateBV())
	}
}

// TestXSAVEMXCSR sets MXCSR through KVM_SET_XSAVE and reads it back; it
// also logs what KVM_GET_FPU says, which on PVM hosts is 0.
func TestXSAVEMXCSR(t *testing.T) {
	s := openKVM(t)
	if n, err := s.CheckExtension(kvm.CapXSave); err != nil {
		t.Fatal(err)
	} else if n == 0 {
		t.Skip("KVM_CAP_XSAVE = 0: this host's KVM has no KVM_GET_XSAVE")
	}
	vm := createVM(t, s)
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var x kvm.XSAVE
	if err := v.GetXSAVE(&x); err != nil {
		t.Fatal(err)
	}
	if x.MXCSR() != 0x1f80 {
		t.Errorf("GetXSAVE() at reset: MXCSR = %#x, want 0x1f80", x.MXCSR())
	}
	x.SetMXCSR(0x7f80)
	if err := v.SetXSAVE(&x); err != nil {
		t.Fatal(err)
	}
	var y kvm.XSAVE
	if err := v.GetXSAVE(&y); err != nil {
		t.Fatal(err)
	}
	if y.MXCSR() != 0x7f80 || y.XStateBV()&kvm.XStateSSE == 0 {
		t.Errorf("GetXSAVE() after SetXSAVE(MXCSR 0x7f80) = MXCSR %#x, XSTATE_BV %#x, want 0x7f80 with the SSE bit", y.MXCSR(), y.XStateBV())
	}
	var f kvm.FPU
	if err := v.GetFPU(&f); err != nil {
		t.Fatal(err)
	}
	t.Logf("GetFPU() after it: MXCSR %#x", f.MXCSR)
}
