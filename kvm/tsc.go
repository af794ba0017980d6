package kvm

// deviceAttr mirrors struct kvm_device_attr: an attribute of a device, or
// of a vCPU (KVM_{HAS,GET,SET}_DEVICE_ATTR on its fd).
type deviceAttr struct {
	Flags uint32
	Group uint32
	Attr  uint64
	Addr  uint64 // the address of the attribute's value
}

// The vCPU's TSC attributes (Documentation/virt/kvm/devices/vcpu.rst, 4).
const (
	vcpuTSCCtrl   = 0 // KVM_VCPU_TSC_CTRL: the TSC control group
	vcpuTSCOffset = 0 // KVM_VCPU_TSC_OFFSET: the guest TSC's offset from the host's (u64)
)
