package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/govmm/govmm/devices/pci"
	virtiopci "github.com/govmm/govmm/virtio/pci"
)

// virtioStateVersion is the layout version of virtioState, with the
// transport's (virtiopci.StateVersion) inside it: either changing bumps
// it.
const virtioStateVersion = 1

// virtioState is one virtio device's state in a State, under the ID
// "KIND@SLOT" (virtio-blk@00:02.0): its transport (virtio 1.2, 4.1: the
// driver's configuration, the queues and where the device is in them,
// the PCI function with its MSI-X table) and what of the device's
// configuration space its backend does not fix.
type virtioState struct {
	Transport virtiopci.State
	// Sectors is a virtio-blk disk's capacity (5.2.4), which the guest's
	// driver read: the restored disk must have it.
	Sectors uint64 `json:",omitempty"`
	// MAC is a virtio-net card's address (5.1.4), which the guest's
	// driver read; a restore given mac= shows that one instead.
	MAC string `json:",omitempty"`
}

// addVirtioState makes vd part of every State and of every pause: a
// pause stops its workers once what is in flight is done (and a disk's
// writes are flushed), the state is its transport's and device's, and a
// restore leaves it stopped until the vCPUs have their state.
func (m *Machine) addVirtioState(vd *virtioDev) {
	id := fmt.Sprintf("%s@%s", vd.spec.kind, pci.SlotName(vd.slot))
	m.addQuiescer(vd)
	m.addRestartedDevice(id, virtioStateVersion, vd.saveState, func(data json.RawMessage) error {
		var s virtioState
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("its state does not decode: %w", err)
		}
		return vd.restoreState(s, m.cfg.Verbose, m.log)
	}, vd.tr.Resume)
}

// Quiesce stops the device's work for a pause (Quiescer): requests in
// flight complete, reach guest RAM and are returned (virtio-blk's
// writes flushed to the disk, so that a destination sharing it reads
// them); nothing then touches guest RAM until Resume. When ctx ends
// first (a disk that does not answer), the pause fails and the device
// goes on once its request is done.
func (vd *virtioDev) Quiesce(ctx context.Context) error {
	if err := vd.tr.QuiesceContext(ctx); err != nil {
		return err
	}
	if vd.blk != nil {
		return vd.blk.Flush()
	}
	return nil
}

// Resume lets the device go on after a pause.
func (vd *virtioDev) Resume() { vd.tr.Resume() }

// saveState is the device's virtioState; the device is quiesced.
func (vd *virtioDev) saveState() (any, error) {
	ts, err := vd.tr.State()
	if err != nil {
		return nil, err
	}
	s := virtioState{Transport: ts}
	switch {
	case vd.blk != nil:
		s.Sectors = vd.blk.Sectors()
	case vd.net != nil:
		s.MAC = vd.net.MAC().String()
	}
	return s, nil
}

// restoreState puts the freshly built device in state s, stopped.
func (vd *virtioDev) restoreState(s virtioState, verbose bool, log io.Writer) error {
	switch {
	case vd.blk != nil:
		if s.Sectors != vd.blk.Sectors() {
			return fmt.Errorf("the disk %s has %d sectors, the saved guest's had %d: give the disk it ran with (or a copy of it)", vd.spec.blk.Path, vd.blk.Sectors(), s.Sectors)
		}
	case vd.net != nil:
		saved, err := net.ParseMAC(s.MAC)
		if err != nil || len(saved) != 6 {
			return fmt.Errorf("its saved MAC address %q is not one: the state is corrupt", s.MAC)
		}
		if !vd.spec.net.macGiven {
			if err := vd.net.SetMAC(saved); err != nil {
				return err
			}
		} else if verbose && saved.String() != vd.spec.net.mac.String() {
			fmt.Fprintf(log, "govmm: %s: MAC %v instead of the saved guest's %v (the guest's driver keeps the one it read until it probes the card again)\n", vd.spec.kind, vd.spec.net.mac, saved)
		}
		if verbose && vd.spec.net.user {
			// The card's state moves; the host's side of user-mode
			// networking (its NAT's connections) cannot.
			fmt.Fprintf(log, "govmm: %s: a new user-mode network: the guest keeps its address and lease, but connections it had through the old one are gone\n", vd.spec.kind)
		}
	}
	return vd.tr.Restore(s.Transport)
}

// deviceShape is what the guest sees of a device word: a virtio
// device's kind, and for a disk whether it is read-only (its features);
// not its backend (the disk's file, cache and serial, the card's TAP or
// user-mode network and its MAC), which a restore or a migration's
// destination may give anew. A restore still refuses a disk of another
// size (virtioState.Sectors), and a backend short of the features the
// guest's driver took (virtiopci.Transport.Restore).
func deviceShape(d Device) string {
	if !isVirtio(string(d)) {
		return string(d)
	}
	sp, err := parseVirtio(string(d))
	if err != nil {
		return string(d)
	}
	if sp.kind == virtioBlk && sp.blk.ReadOnly {
		return sp.kind + ",readonly=on"
	}
	return sp.kind
}

// sameDevices reports whether a and b are the same devices, in order, as
// the guest sees them (deviceShape).
func sameDevices(a, b []Device) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if deviceShape(a[i]) != deviceShape(b[i]) {
			return false
		}
	}
	return true
}

// keepSavedMACs returns devs with the MAC address of each virtio-net card
// that does not name one (mac=) taken from the saved guest's same card,
// so that its backend is built for it (user-mode networking's DHCP lease
// is the MAC's). devs and saved are the same devices (sameDevices).
func keepSavedMACs(devs, saved []Device) []Device {
	out := slices.Clone(devs)
	for i, d := range devs {
		sp, err := parseVirtio(string(d))
		if err != nil || sp.kind != virtioNet || sp.net.macGiven {
			continue
		}
		if was, err := parseVirtio(string(saved[i])); err == nil && was.kind == virtioNet && was.net.macGiven {
			out[i] = Device(string(d) + ",mac=" + was.net.mac.String())
		}
	}
	return out
}
