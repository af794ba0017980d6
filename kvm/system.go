package kvm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// APIVersion is the only KVM API version there has ever been in a released
// kernel (KVM_API_VERSION); anything else means a broken or foreign device.
const APIVersion = 12

// System is the /dev/kvm device: it answers questions about the host's KVM
// and creates VMs.
type System struct {
	f *os.File
}

// Open opens the KVM device at path (normally "/dev/kvm") and checks its
// API version.
func Open(path string) (*System, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(path, err)
	}
	s := &System{f: f}
	if err := checkAPI(s); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openError explains why the KVM device could not be opened and what to do.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open %s: KVM is not available on this host: load the kvm_intel or kvm_amd module (modprobe kvm_intel), enable virtualization in the firmware, or run on a host or cloud VM with (nested) KVM: %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open %s: permission denied: add your user to the kvm group (sudo usermod -aG kvm $USER, then log in again) or run as root: %w", path, err)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// checkAPI returns an error unless s speaks KVM API version 12. Open calls
// it, so every System has passed it.
func checkAPI(s *System) error {
	v, err := s.APIVersion()
	if err != nil {
		return err
	}
	if v != APIVersion {
		return fmt.Errorf("KVM_GET_API_VERSION = %d, want %d: this kernel's KVM is not supported", v, APIVersion)
	}
	return nil
}

// APIVersion returns KVM_GET_API_VERSION.
func (s *System) APIVersion() (int, error) {
	r, err := ioctl(s.f, kvmGetAPIVersion, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	return int(r), nil
}

// CheckExtension returns what KVM says about capability c: 0 if absent.
func (s *System) CheckExtension(c Cap) (int, error) {
	return checkExtension(s.f, c)
}

func checkExtension(f *os.File, c Cap) (int, error) {
	r, err := ioctl(f, kvmCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("KVM_CHECK_EXTENSION %v: %w", c, err)
	}
	return int(r), nil
}

// VCPUMmapSize returns the size of the struct kvm_run area that each vCPU
// fd maps (KVM_GET_VCPU_MMAP_SIZE).
func (s *System) VCPUMmapSize() (int, error) {
	r, err := ioctl(s.f, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	return int(r), nil
}

// CreateVM creates a VM with no memory and no vCPUs.
func (s *System) CreateVM() (*VM, error) {
	size, err := s.VCPUMmapSize()
	if err != nil {
		return nil, err
	}
	if size < runHeaderSize {
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE = %d, want at least %d: this kernel's KVM is not supported", size, runHeaderSize)
	}
	r, err := ioctl(s.f, kvmCreateVM, 0) // machine type 0: the default
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &VM{f: os.NewFile(r, "kvm-vm"), mmapSize: size}, nil
}

// Close closes /dev/kvm. VMs created from it stay usable.
func (s *System) Close() error {
	return s.f.Close()
}
