package machine

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDiskPaused is ReplaceDisk's answer while the guest is paused.
var ErrDiskPaused = errors.New("the guest is paused: resume it first, so that its driver takes the configuration change")

// ReplaceDisk puts the file at path behind the virtio-blk disk that
// Config.Devices[index] names, or, given the file it has, re-reads that
// file's size, while the guest runs: Firecracker's PATCH /drives, with
// which orchestrators hot-plug an image into a placeholder drive. The
// request in flight finishes (flushed to the old file), the disk's
// capacity becomes the new file's size in whole sectors, and the guest's
// driver gets a configuration change notification (virtio 1.2, 4.1.4.5;
// Linux re-reads the capacity: "virtio_blk virtio1: [vdb] new size").
// readOnly must be the disk's own (its driver negotiated
// VIRTIO_BLK_F_RO as it is, 5.2.3). A State saved afterwards names the
// new file, so a restore opens it.
//
// It is refused while the guest is paused (ErrDiskPaused): a pause's
// devices stay still until Resume, and a snapshot of a paused guest would
// hold the notification half sent.
func (m *Machine) ReplaceDisk(index int, path string, readOnly bool) error {
	vd := m.virtioAt(index)
	if vd == nil || vd.blk == nil {
		return fmt.Errorf("device %d is not a virtio-blk disk", index)
	}
	m.mob.op.Lock() // no pause, resume or snapshot meanwhile
	defer m.mob.op.Unlock()
	if m.Paused() {
		return ErrDiskPaused
	}
	if err := vd.blk.Replace(path, readOnly, vd.tr.ConfigChanged); err != nil {
		return err
	}
	if m.cfg.Verbose {
		fmt.Fprintf(m.log, "govmm: %s: now %s, %d sectors; configuration change sent\n", vd.name(), path, vd.blk.Sectors())
	}
	return nil
}

// virtioAt is the virtio device Config.Devices[index] built, or nil.
func (m *Machine) virtioAt(index int) *virtioDev {
	if m.pci == nil {
		return nil
	}
	for _, vd := range m.pci.virtio {
		if vd.index == index {
			return vd
		}
	}
	return nil
}

// name is how log lines name the device.
func (vd *virtioDev) name() string { return fmt.Sprintf("%s %d", vd.spec.kind, vd.index) }

// currentDisks rewrites devs (the machine's Config.Devices, cloned) so
// that each virtio-blk disk's word names the file behind it now, which
// ReplaceDisk may have changed.
func (m *Machine) currentDisks(devs []Device) {
	if m.pci == nil {
		return
	}
	for _, vd := range m.pci.virtio {
		if vd.blk == nil || vd.index < 0 || vd.index >= len(devs) {
			continue
		}
		if p := vd.blk.Options().Path; p != vd.spec.blk.Path {
			devs[vd.index] = withFile(devs[vd.index], p)
		}
	}
}

// withFile is the virtio-blk word w with file=path.
func withFile(w Device, path string) Device {
	parts := splitOptions(string(w))
	for i, p := range parts {
		if strings.HasPrefix(p, "file=") {
			p = "file=" + path
		}
		parts[i] = strings.ReplaceAll(p, ",", ",,")
	}
	return Device(strings.Join(parts, ","))
}
