// Package virtio holds what every virtio device shares: device types,
// feature bits and status bits (virtio 1.2, "Virtual I/O Device (VIRTIO)
// Version 1.2", OASIS, 2022; sections cited as "virtio 1.2, N.N"), and
// the Device interface that the PCI transport (virtio/pci) drives.
//
// Subpackages: queue (split virtqueues on guest memory, no KVM), pci (the
// modern virtio-pci transport), blk, net, rng (the devices).
package virtio
