package machine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
)

// DeviceState is one device's state in a State: its own State value as
// JSON, with the version of that value's layout. A device whose State
// changes shape bumps its version, and a restore of another version is
// refused by name, not misread.
type DeviceState struct {
	Version int             `json:"version"`
	State   json.RawMessage `json:"state"`
}

// statefulDevice is a device the machine saves and restores: its ID in
// State.Devices (stable across runs of the same configuration), the
// version of its state's layout, and how to read and set its state.
type statefulDevice struct {
	id      string
	version int
	save    func() (any, error)
	restore func(json.RawMessage) error
	// start, when set, lets the restored device go on once the whole
	// machine is in its state (the vCPUs' local APICs, which its
	// interrupts reach, included).
	start func()
}

// addDevice makes a device part of every State: save returns its State
// value (the device paused, see Quiescer), restore puts a device freshly
// built from the same configuration back in a saved one. id must be
// stable for the same flags: the kind and the PCI slot, such as
// "virtio-blk@00:03.0". A device with workers adds itself with
// addQuiescer too.
func (m *Machine) addDevice(id string, version int, save func() (any, error), restore func(json.RawMessage) error) {
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	m.mob.stateful = append(m.mob.stateful, statefulDevice{id: id, version: version, save: save, restore: restore})
}

// addRestartedDevice is addDevice for a device whose restore leaves it
// stopped: start lets it go on, after every other part of the machine
// has its state (startRestored).
func (m *Machine) addRestartedDevice(id string, version int, save func() (any, error), restore func(json.RawMessage) error, start func()) {
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	m.mob.stateful = append(m.mob.stateful, statefulDevice{id: id, version: version, save: save, restore: restore, start: start})
}

// startRestored lets the devices restoreDevices left stopped go on,
// once: when Run starts the vCPUs, so that they go on with the guest
// (their interrupts reach restored local APICs) and never before it
// runs here (a migration's destination that gives up has not touched
// the disk the source goes on with).
func (m *Machine) startRestored() {
	m.mob.mu.Lock()
	if m.mob.devicesStarted || !m.cfg.restoring() {
		m.mob.mu.Unlock()
		return
	}
	m.mob.devicesStarted = true
	ds := append([]statefulDevice(nil), m.mob.stateful...)
	m.mob.mu.Unlock()
	for _, d := range ds {
		if d.start != nil {
			d.start()
		}
	}
}

// stateOf adapts a device's State and in-place Restore to statefulDevice,
// decoding into S.
func stateOf[S any](id string, version int, get func() S, set func(S) error) statefulDevice {
	return statefulDevice{
		id: id, version: version,
		save: func() (any, error) { return get(), nil },
		restore: func(data json.RawMessage) error {
			var s S
			if err := json.Unmarshal(data, &s); err != nil {
				return err
			}
			return set(s)
		},
	}
}

// noErr adapts a Restore that cannot fail.
func noErr[S any](f func(S)) func(S) error { return func(s S) error { f(s); return nil } }

// statefulDevices lists every device whose state a State carries: the
// platform's, the PCI bus's and its functions', then those added.
func (m *Machine) statefulDevices() []statefulDevice {
	p := m.plat
	ds := []statefulDevice{
		stateOf("serial", 1, p.serial.State, p.serial.Restore),
		stateOf("i8042", 2, p.i8042.State, noErr(p.i8042.Restore)),
		stateOf("rtc", 1, p.rtc.State, noErr(p.rtc.Restore)),
		stateOf("post", 1, p.post.State, noErr(p.post.Restore)),
	}
	if p.debugExit != nil {
		ds = append(ds, stateOf("debug-exit", 1, p.debugExit.State, noErr(p.debugExit.Restore)))
	}
	if m.acpiPM != nil {
		ds = append(ds, stateOf("acpi-pm", 1, m.acpiPM.State, noErr(m.acpiPM.Restore)))
	}
	if m.pit != nil {
		// Saved while frozen by the pause: the state Freeze returned,
		// which Resume restores.
		frozen := func() devices.PITState { return m.mob.pitFrozen }
		ds = append(ds, stateOf("pit", 1, frozen, func(s devices.PITState) error {
			m.pit.Restore(s)
			return nil
		}))
	}
	if m.pci != nil {
		b := m.pci.bus
		ds = append(ds, stateOf("pci-bus", 1, b.State, noErr(b.Restore)))
		for i, td := range m.pci.testDevs {
			ds = append(ds, stateOf(fmt.Sprintf("%s@%s", DevicePCITestDev, nameOr(td.Function(), i)), 1, td.State, td.Restore))
		}
	}
	return append(ds, m.mob.stateful...)
}

// nameOr is a PCI function's bus:device.function, or its index.
func nameOr(f *pci.Function, i int) string {
	if n := f.Name(); n != "" {
		return n
	}
	return fmt.Sprint(i)
}

// restoreDevices puts every device in its state from saved, refusing a
// state that lacks one of this machine's devices or has one it lacks.
func (m *Machine) restoreDevices(saved map[string]DeviceState) error {
	ds := m.statefulDevices()
	here := map[string]bool{}
	var lacking []string
	for _, d := range ds {
		here[d.id] = true
		if _, ok := saved[d.id]; !ok {
			lacking = append(lacking, d.id)
		}
	}
	var extra []string
	for id := range saved {
		if !here[id] {
			extra = append(extra, id)
		}
	}
	if len(lacking) > 0 || len(extra) > 0 {
		sort.Strings(extra)
		var why []string
		if len(lacking) > 0 {
			why = append(why, "it has no state for "+strings.Join(lacking, ", "))
		}
		if len(extra) > 0 {
			why = append(why, "it has state for "+strings.Join(extra, ", ")+", which this machine lacks")
		}
		return fmt.Errorf("restore: the saved guest had other devices: %s; give the same -device (and disk and network) flags it ran with", strings.Join(why, "; "))
	}
	for _, d := range ds {
		s := saved[d.id]
		if s.Version != d.version {
			return fmt.Errorf("restore: device %s's state has layout version %d, this govmm reads version %d: restore with the govmm that saved it", d.id, s.Version, d.version)
		}
		if err := d.restore(s.State); err != nil {
			return fmt.Errorf("restore: device %s: %w", d.id, err)
		}
	}
	return nil
}

// everyDeviceSaved refuses a State that would leave a device out: each
// virtio device must have joined with addDevice (its queues and
// configuration are state the guest's driver relies on).
func (m *Machine) everyDeviceSaved() error {
	var virtio []string
	for _, d := range m.cfg.Devices {
		if isVirtio(string(d)) {
			virtio = append(virtio, strings.SplitN(string(d), ",", 2)[0])
		}
	}
	if len(virtio) > len(m.mob.stateful) {
		return fmt.Errorf("saving the machine's state: of its virtio devices (%s) only %d joined the state: this govmm cannot save the others; run the guest without them to snapshot or migrate it", strings.Join(virtio, ", "), len(m.mob.stateful))
	}
	return nil
}
