package kvm

import (
	"errors"
	"io/fs"
	"testing"

	"golang.org/x/sys/unix"
)

// openKVM opens /dev/kvm for a test, or skips the test saying why.
func openKVM(t *testing.T) *System {
	t.Helper()
	s, err := Open("/dev/kvm")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		t.Skipf("needs KVM: %v", err)
	}
	if err != nil {
		t.Fatalf("Open(/dev/kvm) = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func createVM(t *testing.T, s *System) *VM {
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
	if n, err := s.CheckExtension(CapUserMemory); err != nil || n == 0 {
		t.Fatalf("CheckExtension(%v) = %d, %v, want > 0", CapUserMemory, n, err)
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
	if err := vm.SetUserMemoryRegion(0, MemLogDirtyPages, 0, mem); err != nil {
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
	var sregs Sregs
	if err := v.GetSregs(&sregs); err != nil {
		t.Fatal(err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	if err := v.SetSregs(&sregs); err != nil {
		t.Fatal(err)
	}
	if err := v.SetRegs(&Regs{RIP: 0x1000, RFLAGS: 0x2}); err != nil {
		t.Fatal(err)
	}

	v.SetImmediateExit(true)
	if e, err := v.Run(); err != nil || e != Exit(&v.exits.interrupted) {
		t.Fatalf("Run() with immediate exit = %v, %v, want interrupted", e, err)
	}
	v.SetImmediateExit(false)

	var out []byte
	for halted := false; !halted; {
		e, err := v.Run()
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
		switch e := e.(type) {
		case *IOExit:
			if e.Port != 0x3f8 || !e.Out {
				t.Fatalf("Run() = %v, want out to port 0x3f8", e)
			}
			out = append(out, e.Data...)
		case *HLTExit:
			halted = true
		case *InterruptedExit:
		case *InternalErrorExit, *FailEntryExit:
			t.Skipf("this KVM cannot run a real-mode guest: %v", e)
		default:
			t.Fatalf("Run() = %v, want io or hlt", e)
		}
	}
	if string(out) != "A" {
		t.Errorf("guest wrote %q to port 0x3f8, want %q", out, "A")
	}
	var regs Regs
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
	msrs := []MSREntry{{Index: 0xc0000080}} // IA32_EFER
	if n, err := v.GetMSRs(msrs); err != nil || n != 1 {
		t.Errorf("GetMSRs(EFER) = %d, %v, want 1, nil", n, err)
	}
	var fpu FPU
	if err := v.GetFPU(&fpu); err != nil {
		t.Error(err)
	}
	if err := v.SetFPU(&fpu); err != nil {
		t.Error(err)
	}
}

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
	if err := vm.SetIRQLine(4, true); err != nil {
		t.Error(err)
	}
	if err := vm.SetIRQLine(4, false); err != nil {
		t.Error(err)
	}
	for _, id := range []uint32{IRQChipPICMaster, IRQChipPICSlave, IRQChipIOAPIC} {
		c := IRQChip{ChipID: id}
		if err := vm.GetIRQChip(&c); err != nil {
			t.Error(err)
		}
		if err := vm.SetIRQChip(&c); err != nil {
			t.Error(err)
		}
	}
	var pit PITState2
	if err := vm.GetPIT2(&pit); err != nil {
		t.Error(err)
	}
	if err := vm.SetPIT2(&pit); err != nil {
		t.Error(err)
	}
	var clock ClockData
	if err := vm.GetClock(&clock); err != nil {
		t.Error(err)
	}
	if err := vm.SetClock(&ClockData{Clock: clock.Clock}); err != nil {
		t.Error(err)
	}

	var lapic LAPICState
	if err := v.GetLAPIC(&lapic); err != nil {
		t.Error(err)
	}
	if err := v.SetLAPIC(&lapic); err != nil {
		t.Error(err)
	}
	var ev VCPUEvents
	if err := v.GetVCPUEvents(&ev); err != nil {
		t.Error(err)
	}
	if err := v.SetVCPUEvents(&ev); err != nil {
		t.Error(err)
	}
	var mp MPState
	if err := v.GetMPState(&mp); err != nil {
		t.Error(err)
	}
	if mp.State != MPStateRunnable {
		t.Errorf("GetMPState(BSP) = %d, want %d (runnable)", mp.State, MPStateRunnable)
	}
	if err := v.SetMPState(&mp); err != nil {
		t.Error(err)
	}
	if err := v.SetGuestDebug(&GuestDebug{Control: GuestDebugEnable | GuestDebugSingleStep}); err != nil {
		t.Error(err)
	}
	if err := v.SetGuestDebug(&GuestDebug{}); err != nil {
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
	if err := vm.IOEventFD(efd, 0x510, 2, 0, IOEventFDPIO); err != nil {
		t.Error(err)
	}
	if err := vm.IOEventFD(efd, 0x510, 2, 0, IOEventFDPIO|IOEventFDDeassign); err != nil {
		t.Error(err)
	}
}
