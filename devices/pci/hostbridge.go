package pci

// govmm's PCI IDs. govmm has no vendor ID of its own: these are in the
// range that Red Hat's vendor ID 0x1af4 (formerly Qumranet) leaves
// "available for experimental usage without registration", 0x10f0-0x10ff
// (QEMU's docs/specs/pci-ids.rst). No Linux driver claims them, though
// virtio_pci, which matches every 0x1af4 device, probes each once and
// declines (its device IDs end at 0x107f).
const (
	VendorID           = 0x1af4
	HostBridgeDeviceID = 0x10f0
	TestDevDeviceID    = 0x10f1
)

// NewHostBridge returns device 00.0: a host bridge (class 06.00.00) with
// no BARs and no interrupts, there so that the guest's bus scan finds a
// bridge where a PC has one.
func NewHostBridge() (*Function, error) {
	return NewFunction(Config{
		VendorID: VendorID, DeviceID: HostBridgeDeviceID,
		SubsysVendor: VendorID, SubsysID: HostBridgeDeviceID,
		Class: ClassHostBridge,
	})
}
