package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// State is everything about a paused machine except its RAM: what a
// snapshot's state file and the last section of a migration stream carry,
// and what New rebuilds a machine from (Config.Restore). Package snapshot
// gives it its file format.
type State struct {
	Config SavedConfig
	VM     VMState
	VCPUs  []vcpu.State
	// Devices holds every device's state by its ID (devstate.go): the
	// platform devices, the PCI bus and its functions, and every device
	// that joined with addDevice.
	Devices map[string]DeviceState
}

// SavedConfig is what the machine was built with that its restore must
// build again: a machine of another shape could not run the guest.
type SavedConfig struct {
	MemSize      uint64
	CPUs         int
	Devices      []Device `json:",omitempty"` // -device, in order
	PIT          PITMode
	DebugDevices bool
	Hide         HideMode
	Cmdline      string // the command line the guest booted with, for the record
}

// VMState is the VM's own state in KVM: the clock, the in-kernel
// interrupt controllers and the in-kernel PIT.
type VMState struct {
	Clock kvm.ClockData
	// Wall is the host's wall clock when the clocks were read: a host
	// that cannot set the TSC moves the kvmclock on from it (clock.go).
	Wall time.Time
	// IRQChips are the master PIC, the slave PIC and the IOAPIC, in
	// ChipID order.
	IRQChips [3]kvm.IRQChip
	PIT      *kvm.PITState2 `json:",omitempty"` // nil with the userspace PIT
}

// savedConfig is c's SavedConfig.
func (c *Config) savedConfig(cmdline string) SavedConfig {
	return SavedConfig{
		MemSize: c.MemSize, CPUs: c.CPUs, Devices: slices.Clone(c.Devices), PIT: c.PIT,
		DebugDevices: !c.NoDebugDevices, Hide: c.Hide, Cmdline: cmdline,
	}
}

// ApplySaved makes c build the machine s describes: its RAM, vCPUs,
// devices and PIT. The host's side (the KVM device, the serial port's
// output, the cache) stays c's, and so do c's devices where c has the
// same devices as s in what the guest sees of them (sameDevices): their
// backends (a clone's own disk copy, TAP or MAC) are the host's side.
func (c *Config) ApplySaved(s SavedConfig) {
	if len(c.Devices) == 0 || !sameDevices(c.Devices, s.Devices) {
		c.Devices = slices.Clone(s.Devices)
	} else {
		c.Devices = keepSavedMACs(c.Devices, s.Devices)
	}
	c.MemSize, c.CPUs, c.PIT = s.MemSize, s.CPUs, s.PIT
	c.NoDebugDevices, c.Hide, c.Cmdline = !s.DebugDevices, s.Hide, s.Cmdline
}

// Differences lists what a machine built from c would have that differs
// from s, one "what: here, there" each, for a restore that must refuse.
func (c *Config) Differences(s SavedConfig) []string {
	var d []string
	add := func(what string, here, there any) {
		d = append(d, fmt.Sprintf("%s: %v here, %v in the saved guest", what, here, there))
	}
	if c.MemSize != s.MemSize {
		add("guest RAM", fmt.Sprintf("%d MiB", c.MemSize>>20), fmt.Sprintf("%d MiB", s.MemSize>>20))
	}
	if c.CPUs != s.CPUs {
		add("vCPUs", c.CPUs, s.CPUs)
	}
	if !sameDevices(c.Devices, s.Devices) {
		add("devices", c.Devices, s.Devices)
	}
	if c.PIT != s.PIT {
		add("PIT", c.PIT, s.PIT)
	}
	if !c.NoDebugDevices != s.DebugDevices {
		add("debug devices", !c.NoDebugDevices, s.DebugDevices)
	}
	return d
}

// Restore is what New restores instead of booting a kernel (Config.Restore).
type Restore struct {
	State *State
	// Memory is guest RAM already holding the guest's pages: a private
	// mapping of a snapshot's memory file (memory.MapFile) or the pages a
	// migration received. The machine owns it from New on, and closes it
	// even when New fails.
	Memory *memory.Memory
}

// restoring reports whether New restores rather than boots.
func (c *Config) restoring() bool { return c.Restore != nil }

// errNotPausedState is SaveState's answer for a running guest.
var errNotPausedState = errors.New("saving the machine's state: the guest is running: pause it first")

// SaveState reads the machine's state. The guest must be paused (Pause);
// it stays paused.
func (m *Machine) SaveState() (*State, error) {
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	if !m.mob.paused {
		return nil, errNotPausedState
	}
	return m.saveStateLocked()
}

func (m *Machine) saveStateLocked() (*State, error) {
	if err := m.everyDeviceSaved(); err != nil {
		return nil, err
	}
	s := &State{Config: m.SavedConfig(), Devices: map[string]DeviceState{}}
	s.VM.Clock, s.VM.Wall = kvm.ClockData{Clock: m.mob.time.Clock}, m.mob.time.Wall
	for i := range s.VM.IRQChips {
		s.VM.IRQChips[i].ChipID = uint32(i)
		if err := m.vm.GetIRQChip(&s.VM.IRQChips[i]); err != nil {
			return nil, fmt.Errorf("saving the machine's state: %w", err)
		}
	}
	if m.cfg.PIT != PITUser {
		s.VM.PIT = new(kvm.PITState2)
		if err := m.vm.GetPIT2(s.VM.PIT); err != nil {
			return nil, fmt.Errorf("saving the machine's state: %w", err)
		}
	}
	for i, v := range m.vcpus {
		v.MSRs = m.mob.msrs
		st, err := v.SaveState()
		if err != nil {
			return nil, fmt.Errorf("saving the machine's state: %w", err)
		}
		// The TSC as it was at the pause, in step with the kvmclock then.
		if i < len(m.mob.time.TSCs) {
			for j := range st.MSRs {
				for _, t := range m.mob.time.TSCs[i] {
					if st.MSRs[j].Index == t.Index {
						st.MSRs[j].Data = t.Data
					}
				}
			}
		}
		s.VCPUs = append(s.VCPUs, st)
	}
	for _, d := range m.statefulDevices() {
		st, err := d.save()
		if err != nil {
			return nil, fmt.Errorf("saving the state of device %s: %w", d.id, err)
		}
		data, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("saving the state of device %s: %w", d.id, err)
		}
		s.Devices[d.id] = DeviceState{Version: d.version, State: data}
	}
	return s, nil
}

// setupMobility is New's last step: it reads what saving vCPUs needs
// from KVM, and when c.Restore is set, puts the machine in its state.
func (m *Machine) setupMobility() error {
	msrs, err := m.sys.MSRIndexList()
	if err != nil {
		return err
	}
	m.mob.msrs = msrs
	for _, v := range m.vcpus {
		v.MSRs = msrs
	}
	if err := m.probeTSC(); err != nil {
		return err
	}
	if !m.cfg.restoring() {
		return nil
	}
	return m.restoreState(m.cfg.Restore.State)
}

// restoreState puts a freshly built machine in state s: devices first
// (each drives its interrupt line to its saved level), then the
// interrupt controllers and PIT over what that did, the vCPUs, and the
// clock last.
func (m *Machine) restoreState(s *State) error {
	if s == nil {
		return errors.New("restore: no state given")
	}
	if d := m.cfg.Differences(s.Config); len(d) > 0 {
		return fmt.Errorf("restore: this machine differs from the saved one: %s", strings.Join(d, "; "))
	}
	if len(s.VCPUs) != len(m.vcpus) {
		return fmt.Errorf("restore: the state holds %d vCPUs, the machine has %d: the state is corrupt", len(s.VCPUs), len(m.vcpus))
	}
	if err := m.checkHostCPU(s.VCPUs[0].CPUID); err != nil {
		return err
	}
	if err := m.restoreDevices(s.Devices); err != nil {
		return err
	}
	for i := range s.VM.IRQChips {
		c := s.VM.IRQChips[i]
		c.ChipID = uint32(i)
		if err := m.vm.SetIRQChip(&c); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	switch {
	case m.cfg.PIT != PITUser && s.VM.PIT == nil:
		return errors.New("restore: the state has no in-kernel PIT state, and this machine uses KVM's PIT: the state is corrupt")
	case m.cfg.PIT != PITUser:
		if err := m.vm.SetPIT2(s.VM.PIT); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	t := guestTime{Clock: s.VM.Clock.Clock, Wall: s.VM.Wall}
	for i, v := range m.vcpus {
		if err := v.RestoreState(s.VCPUs[i]); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		t.TSCs = append(t.TSCs, vcpu.TimeOf(s.VCPUs[i]))
	}
	// Every TSC exactly, then the kvmclock, together (clock.go).
	if err := m.setTime(t); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil // Run starts the devices that have work of their own (startRestored)
}

// checkHostCPU refuses a guest that saw CPU features this host cannot
// give it, naming them all.
func (m *Machine) checkHostCPU(saved []kvm.CPUIDEntry) error {
	if len(saved) == 0 {
		return nil
	}
	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	var shown []kvm.CPUIDEntry
	if len(m.vcpus) > 0 {
		shown = m.vcpus[0].CPUID // what KVM gives a vCPU here (more than supported on PVM hosts)
	}
	if missing := vcpu.MissingFeatures(saved, supported, shown); len(missing) > 0 {
		return fmt.Errorf("restore: this host's CPU (as KVM offers it) lacks %d feature(s) the saved guest saw and may use: %s; restore on a host with them", len(missing), strings.Join(missing, ", "))
	}
	return nil
}

// restoredRAM is the restore's RAM, nil when booting.
func (c *Config) restoredRAM() *memory.Memory {
	if c.Restore == nil {
		return nil
	}
	return c.Restore.Memory
}

// closeRestore releases the restore's RAM for a New that fails before
// the machine owns it.
func (c *Config) closeRestore() error {
	if c.Restore == nil || c.Restore.Memory == nil {
		return nil
	}
	return c.Restore.Memory.Close()
}

// SavedConfig is the machine's shape, as a State records it.
func (m *Machine) SavedConfig() SavedConfig {
	cmdline := m.cfg.Cmdline
	if m.Loaded != nil && m.Loaded.Cmdline != "" {
		cmdline = m.Loaded.Cmdline
	}
	sc := m.cfg.savedConfig(cmdline)
	m.currentDisks(sc.Devices) // drives.go: a disk's file may have been replaced
	return sc
}

// Restored reports whether the machine was restored (Config.Restore)
// rather than booted.
func (m *Machine) Restored() bool { return m.cfg.restoring() }

// Started is when the VMM started (Config.Start).
func (m *Machine) Started() time.Time { return m.cfg.Start }
