package kvm

import (
	"fmt"
	"unsafe"
)

// SetIdentityMapAddr places the one page Intel VMX needs for an identity
// page table at guest-physical addr (KVM_SET_IDENTITY_MAP_ADDR).
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	// Safe: addr is a local the kernel reads 8 bytes from.
	if _, err := ioctlPtr(vm.f, kvmSetIdentityMapAddr, unsafe.Pointer(&addr)); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel 8254 PIT with a dummy speaker port
// (KVM_CREATE_PIT2 with KVM_PIT_SPEAKER_DUMMY). It needs CreateIRQChip.
func (vm *VM) CreatePIT2() error {
	c := pitConfig{Flags: pitSpeakerDummy}
	// Safe: c is a pitConfig, the struct kvm_pit_config the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmCreatePIT2, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// SetIRQLine drives interrupt line irq (a GSI: PIC pins 0-15, IOAPIC pins
// 0-23) high or low (KVM_IRQ_LINE).
func (vm *VM) SetIRQLine(irq uint32, high bool) error {
	l := irqLevel{IRQ: irq}
	if high {
		l.Level = 1
	}
	// Safe: l is an irqLevel, the struct kvm_irq_level the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmIRQLine, unsafe.Pointer(&l)); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE %d level %d: %w", irq, l.Level, err)
	}
	return nil
}

// SetUserMemoryRegion maps host at guest-physical guestAddr as memory slot
// slot (KVM_SET_USER_MEMORY_REGION); flags is 0 or MemLogDirtyPages and
// MemReadonly. An empty host deletes the slot.
//
// KVM keeps the host address: host must be memory the garbage collector
// does not own (an mmap'd mapping such as memory.Memory's) and must stay
// mapped until the slot is deleted or the VM is closed. guestAddr and
// len(host) must be multiples of the page size.
func (vm *VM) SetUserMemoryRegion(slot, flags uint32, guestAddr uint64, host []byte) error {
	r := userMemoryRegion{Slot: slot, Flags: flags, GuestPhysAddr: guestAddr, MemorySize: uint64(len(host))}
	if len(host) > 0 {
		// Safe: only the address is taken, as an integer; the caller
		// promises (above) that the mapping outlives the slot.
		r.UserspaceAddr = uint64(uintptr(unsafe.Pointer(&host[0])))
	}
	// Safe: r is a userMemoryRegion, the struct the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmSetUserMemoryRegion, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d at %#x, %#x bytes, flags %#x: %w", slot, guestAddr, len(host), flags, err)
	}
	return nil
}

// GetDirtyLog fills bitmap with the pages of slot written since the last
// call, one bit per page, and clears KVM's log (KVM_GET_DIRTY_LOG). The slot
// must have MemLogDirtyPages, and bitmap must have a bit for each of its
// pages, rounded up to a whole uint64.
func (vm *VM) GetDirtyLog(slot uint32, bitmap []uint64) error {
	if len(bitmap) == 0 {
		return fmt.Errorf("KVM_GET_DIRTY_LOG slot %d: empty bitmap: pass one bit per page of the slot", slot)
	}
	d := dirtyLog{Slot: slot, Bitmap: &bitmap[0]}
	// Safe: d is a dirtyLog whose Bitmap is a Go pointer into the live
	// bitmap slice, which the kernel writes during the call.
	if _, err := ioctlPtr(vm.f, kvmGetDirtyLog, unsafe.Pointer(&d)); err != nil {
		return fmt.Errorf("KVM_GET_DIRTY_LOG slot %d: %w", slot, err)
	}
	return nil
}

// IRQFD makes a write to eventfd fd raise interrupt gsi (KVM_IRQFD), so a
// device thread can interrupt the guest without a vCPU exit.
func (vm *VM) IRQFD(fd int, gsi uint32) error {
	return vm.irqfd(irqfd{FD: uint32(fd), GSI: gsi})
}

// RemoveIRQFD undoes IRQFD(fd, gsi).
func (vm *VM) RemoveIRQFD(fd int, gsi uint32) error {
	return vm.irqfd(irqfd{FD: uint32(fd), GSI: gsi, Flags: irqfdFlagDeassign})
}

func (vm *VM) irqfd(a irqfd) error {
	// Safe: a is an irqfd, the struct kvm_irqfd the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmIRQFD, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("KVM_IRQFD fd %d gsi %d flags %#x: %w", a.FD, a.GSI, a.Flags, err)
	}
	return nil
}

// IOEventFD makes a guest write of size bytes (1, 2, 4, 8, or 0 for any) to
// addr signal eventfd fd instead of exiting (KVM_IOEVENTFD). flags says
// whether addr is a port (IOEventFDPIO), whether only writes of datamatch
// count (IOEventFDDatamatch), or removes the registration
// (IOEventFDDeassign).
func (vm *VM) IOEventFD(fd int, addr uint64, size uint32, datamatch uint64, flags IOEventFDFlags) error {
	a := ioeventfd{Datamatch: datamatch, Addr: addr, Len: size, FD: int32(fd), Flags: uint32(flags)}
	// Safe: a is an ioeventfd, the struct kvm_ioeventfd the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmIOEventFD, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD fd %d addr %#x size %d flags %#x: %w", fd, addr, size, flags, err)
	}
	return nil
}

// GetClock reads the VM's kvmclock (KVM_GET_CLOCK).
func (vm *VM) GetClock(c *ClockData) error {
	// Safe: c points at a ClockData, the struct kvm_clock_data the kernel fills.
	if _, err := ioctlPtr(vm.f, kvmGetClock, unsafe.Pointer(c)); err != nil {
		return fmt.Errorf("KVM_GET_CLOCK: %w", err)
	}
	return nil
}

// SetClock sets the VM's kvmclock (KVM_SET_CLOCK).
func (vm *VM) SetClock(c *ClockData) error {
	// Safe: c points at a ClockData, the struct kvm_clock_data the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmSetClock, unsafe.Pointer(c)); err != nil {
		return fmt.Errorf("KVM_SET_CLOCK: %w", err)
	}
	return nil
}

// GetIRQChip reads the state of the in-kernel chip named by c.ChipID
// (KVM_GET_IRQCHIP).
func (vm *VM) GetIRQChip(c *IRQChip) error {
	// Safe: c points at an IRQChip, the struct kvm_irqchip the kernel fills.
	if _, err := ioctlPtr(vm.f, kvmGetIRQChip, unsafe.Pointer(c)); err != nil {
		return fmt.Errorf("KVM_GET_IRQCHIP chip %d: %w", c.ChipID, err)
	}
	return nil
}

// SetIRQChip restores the state of the in-kernel chip named by c.ChipID
// (KVM_SET_IRQCHIP).
func (vm *VM) SetIRQChip(c *IRQChip) error {
	// Safe: c points at an IRQChip, the struct kvm_irqchip the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmSetIRQChip, unsafe.Pointer(c)); err != nil {
		return fmt.Errorf("KVM_SET_IRQCHIP chip %d: %w", c.ChipID, err)
	}
	return nil
}

// GetPIT2 reads the in-kernel PIT's state (KVM_GET_PIT2).
func (vm *VM) GetPIT2(s *PITState2) error {
	// Safe: s points at a PITState2, the struct kvm_pit_state2 the kernel fills.
	if _, err := ioctlPtr(vm.f, kvmGetPIT2, unsafe.Pointer(s)); err != nil {
		return fmt.Errorf("KVM_GET_PIT2: %w", err)
	}
	return nil
}

// SetPIT2 restores the in-kernel PIT's state (KVM_SET_PIT2).
func (vm *VM) SetPIT2(s *PITState2) error {
	// Safe: s points at a PITState2, the struct kvm_pit_state2 the kernel reads.
	if _, err := ioctlPtr(vm.f, kvmSetPIT2, unsafe.Pointer(s)); err != nil {
		return fmt.Errorf("KVM_SET_PIT2: %w", err)
	}
	return nil
}
