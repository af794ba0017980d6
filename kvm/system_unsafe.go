package kvm

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxCPUIDEntries bounds SupportedCPUID's growing buffer; KVM itself stops
// at 256 (KVM_MAX_CPUID_ENTRIES).
const maxCPUIDEntries = 4096

// SupportedCPUID returns the CPUID leaves KVM can offer a guest
// (KVM_GET_SUPPORTED_CPUID), growing its buffer while KVM says E2BIG.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	for n := 64; ; n *= 2 {
		buf := newCPUID2(nil, n)
		// Safe: buf is a live Go slice of u32s, sized for the header and n
		// entries that the kernel may write.
		_, err := ioctlPtr(s.f, kvmGetSupportedCPUID, unsafe.Pointer(&buf[0]))
		if errors.Is(err, unix.E2BIG) && n < maxCPUIDEntries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID with room for %d entries: %w", n, err)
		}
		return cpuid2Entries(buf), nil
	}
}
