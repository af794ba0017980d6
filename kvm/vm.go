package kvm

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine fd: it owns guest memory slots, the in-kernel
// interrupt controllers and timers, and creates vCPUs.
type VM struct {
	f        *os.File
	mmapSize int // size of each vCPU's kvm_run mapping, from KVM_GET_VCPU_MMAP_SIZE
}

// CheckExtension returns what KVM says about capability c for this VM
// (needs CapCheckExtensionVM; the answer may differ from System's).
func (vm *VM) CheckExtension(c Cap) (int, error) {
	return checkExtension(vm.f, c)
}

// SetTSSAddr places the three pages Intel VMX needs for real-mode emulation
// at guest-physical addr (KVM_SET_TSS_ADDR); they must hold no RAM or MMIO
// the guest uses.
func (vm *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(vm.f, kvmSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PICs, IOAPIC and local APICs
// (KVM_CREATE_IRQCHIP). Call it before creating vCPUs.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.f, kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreateVCPU creates vCPU id (its initial APIC ID) and maps its struct
// kvm_run page.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	r, err := ioctl(vm.f, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	f := os.NewFile(r, fmt.Sprintf("kvm-vcpu:%d", id))
	run, err := unix.Mmap(int(f.Fd()), 0, vm.mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	runtime.KeepAlive(f)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mmap kvm_run of vCPU %d (%d bytes): %w", id, vm.mmapSize, err), f.Close())
	}
	return newVCPU(id, f, run), nil
}

// Close closes the VM fd. KVM frees the VM when its vCPU fds are closed too.
func (vm *VM) Close() error {
	return vm.f.Close()
}
