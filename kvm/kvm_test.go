package kvm_test

// Tests that run on /dev/kvm. They ask kvmtest.Require first, the one
// place that decides whether a test without KVM skips or, under
// GOVMM_REQUIRE_KVM=1, fails; once it has answered, any KVM error is a
// failure. They are an external test package because kvmtest imports kvm.

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// openKVM opens the KVM device for a test, which kvmtest.Require lets run.
func openKVM(t *testing.T) *kvm.System {
	t.Helper()
	kvmtest.Require(t)
	s, err := kvm.Open(kvmtest.Path())
	if err != nil {
		t.Fatalf("kvm.Open(%s) = %v", kvmtest.Path(), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func createVM(t *testing.T, s *kvm.System) *kvm.VM {
	t.Helper()
	vm, err := s.CreateVM()
	if err != nil {
		t.Fatalf("CreateVM() = %v", err)
	}
	t.Cleanup(func() { vm.Close() })
	return vm
}

// guestRAM maps size bytes of anonymous memory for a memory slot.
func guestRAM(t *testing.T, size int) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap guest RAM: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

// realModeProgram, loaded at 0x1000 and run in real mode from CS:IP 0:1000:
//
//	mov al, 'A'       b0 41
//	mov dx, 0x3f8     ba f8 03
//	out dx, al        ee
//	mov [0x2000], al  a2 00 20
//	hlt               f4
var realModeProgram = []byte{0xb0, 0x41, 0xba, 0xf8, 0x03, 0xee, 0xa2, 0x00, 0x20, 0xf4}

func TestRunRealModeGuest(t *testing.T) {
	s := openKVM(t)
	if n, err := s.CheckExtension(kvm.CapUserMemory); err != nil || n == 0 {
		t.Fatalf("CheckExtension(%v) = %d, %v, want > 0", kvm.CapUserMemory, n, err)
	}
	vm := createVM(t, s)
	if err := vm.SetTSSAddr(0xfffbd000); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetIdentityMapAddr(0xfffbc000); err != nil {
		t.Fatal(err)
	}
	mem := guestRAM(t, 0x10000)
	copy(mem[0x1000:], realModeProgram)
	if err := vm.SetUserMemoryRegion(0, kvm.MemLogDirtyPages, 0, mem); err != nil {
		t.Fatal(err)
	}
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	cpuid, err := s.SupportedCPUID()
	if err != nil || len(cpuid) == 0 {
		t.Fatalf("SupportedCPUID() = %d entries, %v, want some", len(cpuid), err)
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

	v.SetImmediateExit(true)
	if e, err := v.Run(); err != nil {
		t.Fatalf("Run() with immediate exit = %v, want an interrupted exit", err)
	} else if _, ok := e.(*kvm.InterruptedExit); !ok {
		t.Fatalf("Run() with immediate exit = %v, want an interrupted exit", e)
	}
	v.SetImmediateExit(false)

	var out []byte
	for halted := false; !halted; {
		e, err := v.Run()
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
		switch e := e.(type) {
		case *kvm.IOExit:
			if e.Port != 0x3f8 || !e.Out {
				t.Fatalf("Run() = %v, want out to port 0x3f8", e)
			}
			out = append(out, e.Data...)
		case *kvm.HLTExit:
			halted = true
		case *kvm.InterruptedExit:
		default:
			t.Fatalf("Run() = %v, want io or hlt", e)
		}
	}
	if string(out) != "A" {
		t.Errorf("guest wrote %q to port 0x3f8, want %q", out, "A")
	}
	var regs kvm.Regs
	if err := v.GetRegs(&regs); err != nil {
		t.Fatal(err)
	}
	if want := uint64(0x1000 + len(realModeProgram)); regs.RIP != want {
		t.Errorf("RIP after hlt = %#x, want %#x", regs.RIP, want)
	}
	bitmap := make([]uint64, 1)
	if err := vm.GetDirtyLog(0, bitmap); err != nil {
		t.Fatal(err)
	}
	if bitmap[0]&(1<<2) == 0 {
		t.Errorf("dirty bitmap = %#b, want page 2 (0x2000) set", bitmap[0])
	}
	msrs := []kvm.MSREntry{{Index: 0xc0000080}} // IA32_EFER
	if n, err := v.GetMSRs(msrs); err != nil || n != 1 {
		t.Errorf("GetMSRs(EFER) = %d, %v, want 1, nil", n, err)
	}
	var fpu kvm.FPU
	if err := v.GetFPU(&fpu); err != nil {
		t.Error(err)
	}
	if err := v.SetFPU(&fpu); err != nil {
		t.Error(err)
	}
}

// TestIRQChipState raises IRQ 4 (COM1's line) and reads it back from the
// in-kernel master PIC's interrupt request register, then checks that
// state written with KVM_SET_IRQCHIP comes back, and runs the other
// VM-wide and vCPU state ioctls once each.
func TestIRQChipState(t *testing.T) {
	s := openKVM(t)
	vm := createVM(t, s)
	if err := vm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	if err := vm.CreatePIT2(); err != nil {
		t.Fatal(err)
	}
	v, err := vm.CreateVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	pic := func(id uint32) kvm.PICState {
		t.Helper()
		c := kvm.IRQChip{ChipID: id}
		if err := vm.GetIRQChip(&c); err != nil {
			t.Fatalf("GetIRQChip(%d) = %v", id, err)
		}
		return c.PIC()
	}
	const irq4 = 1 << 4
	if got := pic(kvm.IRQChipPICMaster); got.IRR != 0 || got.ELCR&irq4 != 0 {
		t.Fatalf("master PIC before IRQ 4: IRR %#02x, ELCR %#02x, want IRR 0 and IRQ 4 edge-triggered", got.IRR, got.ELCR)
	}
	if err := vm.SetIRQLine(4, true); err != nil {
		t.Fatal(err)
	}
	if got := pic(kvm.IRQChipPICMaster); got.IRR != irq4 || got.LastIRR&irq4 == 0 {
		t.Errorf("master PIC after SetIRQLine(4, high): IRR %#02x, last IRR %#02x, want IRR %#02x and IRQ 4 seen high", got.IRR, got.LastIRR, irq4)
	}
	if got := pic(kvm.IRQChipPICSlave); got.IRR != 0 {
		t.Errorf("slave PIC after SetIRQLine(4, high): IRR %#02x, want 0", got.IRR)
	}
	if err := vm.SetIRQLine(4, false); err != nil {
		t.Fatal(err)
	}
	// Edge-triggered: the request stays latched until a CPU takes it; the
	// line's level is forgotten.
	if got := pic(kvm.IRQChipPICMaster); got.IRR != irq4 || got.LastIRR&irq4 != 0 {
		t.Errorf("master PIC after SetIRQLine(4, low): IRR %#02x, last IRR %#02x, want IRR %#02x (latched) and IRQ 4 seen low", got.IRR, got.LastIRR, irq4)
	}

	c := kvm.IRQChip{ChipID: kvm.IRQChipPICMaster}
	if err := vm.GetIRQChip(&c); err != nil {
		t.Fatal(err)
	}
	want := c.PIC()
	want.IMR = 0xef // everything masked but IRQ 4
	c.SetPIC(want)
	if err := vm.SetIRQChip(&c); err != nil {
		t.Fatalf("SetIRQChip(master, IMR 0xef) = %v", err)
	}
	if got := pic(kvm.IRQChipPICMaster); got != want {
		t.Errorf("master PIC after SetIRQChip = %+v, want %+v", got, want)
	}
	for _, id := range []uint32{kvm.IRQChipPICSlave, kvm.IRQChipIOAPIC} {
		c := kvm.IRQChip{ChipID: id}
		if err := vm.GetIRQChip(&c); err != nil {
			t.Error(err)
		}
		if err := vm.SetIRQChip(&c); err != nil {
			t.Error(err)
		}
	}

	var pit kvm.PITState2
	if err := vm.GetPIT2(&pit); err != nil {
		t.Error(err)
	}
	if err := vm.SetPIT2(&pit); err != nil {
		t.Error(err)
	}
	var clock kvm.ClockData
	if err := vm.GetClock(&clock); err != nil {
		t.Error(err)
	}
	if err := vm.SetClock(&kvm.ClockData{Clock: clock.Clock}); err != nil {
		t.Error(err)
	}

	var lapic kvm.LAPICState
	if err := v.GetLAPIC(&lapic); err != nil {
		t.Error(err)
	}
	if err := v.SetLAPIC(&lapic); err != nil {
		t.Error(err)
	}
	var ev kvm.VCPUEvents
	if err := v.GetVCPUEvents(&ev); err != nil {
		t.Error(err)
	}
	if err := v.SetVCPUEvents(&ev); err != nil {
		t.Error(err)
	}
	var mp kvm.MPState
	if err := v.GetMPState(&mp); err != nil {
		t.Error(err)
	}
	if mp.State != kvm.MPStateRunnable {
		t.Errorf("GetMPState(BSP) = %d, want %d (runnable)", mp.State, kvm.MPStateRunnable)
	}
	if err := v.SetMPState(&mp); err != nil {
		t.Error(err)
	}
	if err := v.SetGuestDebug(&kvm.GuestDebug{Control: kvm.GuestDebugEnable | kvm.GuestDebugSingleStep}); err != nil {
		t.Error(err)
	}
	if err := v.SetGuestDebug(&kvm.GuestDebug{}); err != nil {
		t.Error(err)
	}

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := vm.IRQFD(efd, 5); err != nil {
		t.Error(err)
	}
	if err := vm.RemoveIRQFD(efd, 5); err != nil {
		t.Error(err)
	}
	if err := vm.IOEventFD(efd, 0x510, 2, 0, kvm.IOEventFDPIO); err != nil {
		t.Error(err)
	}
	if err := vm.IOEventFD(efd, 0x510, 2, 0, kvm.IOEventFDPIO|kvm.IOEventFDDeassign); err != nil {
		t.Error(err)
	}
}

// TestCheckCapsOnHost: this host's KVM has what govmm needs for one vCPU
// and refuses one more vCPU than its limit, naming the capability.
func TestCheckCapsOnHost(t *testing.T) {
	s := openKVM(t)
	one := kvm.Needs{VCPUs: 1, PIT: true}
	lim, err := kvm.CheckCaps(s, one)
	if err != nil {
		t.Fatalf("CheckCaps(host, %+v) = %v", one, err)
	}
	if lim.Max < 1 || lim.Recommended < 1 {
		t.Errorf("CheckCaps(host, %+v) limits = %+v, want at least 1 each", one, lim)
	}
	t.Logf("vCPU limits: %+v", lim)
	tooMany := kvm.Needs{VCPUs: lim.Max + 1, PIT: true}
	if _, err := kvm.CheckCaps(s, tooMany); err == nil || !strings.Contains(err.Error(), kvm.CapMaxVCPUs.String()) {
		t.Errorf("CheckCaps(host, %+v) = %v, want an error naming %v", tooMany, err, kvm.CapMaxVCPUs)
	}
}
