package kvm_test

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

// TestStatsFD opens the binary statistics of a VM and of a vCPU, runs the
// real-mode program and finds its exits counted by KVM itself.
func TestStatsFD(t *testing.T) {
	s := openKVM(t)
	if n, err := s.CheckExtension(kvm.CapBinaryStatsFD); err != nil || n == 0 {
		t.Skipf("this host's KVM has no binary statistics (KVM_CAP_BINARY_STATS_FD = %d, %v)", n, err)
	}
	vm := createVM(t, s)
	vmStats, err := vm.StatsFD()
	if err != nil {
		t.Fatal(err)
	}
	defer vmStats.Close()
	if vmStats.ID == "" || len(vmStats.Descs) == 0 {
		t.Errorf("VM stats: id %q, %d descriptors, want both", vmStats.ID, len(vmStats.Descs))
	}
	v := realModeVCPU(t, s, vm)
	st, err := v.StatsFD()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before, err := st.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"exits", "io_exits"} {
		if _, ok := before[name]; !ok {
			t.Fatalf("vCPU stats have no %q counter; they have %v", name, st.Names())
		}
	}
	for {
		e, err := v.Run()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.(*kvm.HLTExit); ok {
			break
		}
	}
	after, err := st.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range after {
		if v != before[k] {
			t.Logf("%s: %d -> %d", k, before[k], v)
		}
	}
	// The OUT and the HLT both left the guest. KVM counts the OUT in
	// io_exits only on its fast path (hardware virtualization); where it
	// emulates real mode (PVM) it counts each instruction in
	// insn_emulation instead.
	if got := after["exits"] - before["exits"]; got < 2 {
		t.Errorf("exits grew by %d over a program with an OUT and a HLT, want at least 2", got)
	}
	if got := after["halt_exits"] - before["halt_exits"]; got != 1 {
		t.Errorf("halt_exits grew by %d, want 1", got)
	}
	io, emulated := after["io_exits"]-before["io_exits"], after["insn_emulation"]-before["insn_emulation"]
	if io != 1 && emulated < 5 {
		t.Errorf("io_exits grew by %d and insn_emulation by %d: want the OUT in io_exits, or all 5 instructions emulated", io, emulated)
	}
}

// realModeVCPU is a vCPU of vm at the start of realModeProgram, in real
// mode, with 64 KiB of RAM.
func realModeVCPU(t *testing.T, s *kvm.System, vm *kvm.VM) *kvm.VCPU {
	t.Helper()
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	mem := guestRAM(t, 0x10000)
	copy(mem[0x1000:], realModeProgram)
	if err := vm.SetUserMemoryRegion(0, 0, 0, mem); err != nil {
		t.Fatal(err)
	}
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	cpuid, err := s.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetCPUID2(cpuid); err != nil {
		t.Fatal(err)
	}
	var sregs kvm.Sregs
	if err := v.GetSregs(&sregs); err != nil {
		t.Fatal(err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if err := v.SetSregs(&sregs); err != nil {
		t.Fatal(err)
	}
	if err := v.SetRegs(&kvm.Regs{RIP: 0x1000, RFLAGS: 0x2}); err != nil {
		t.Fatal(err)
	}
	return v
}
