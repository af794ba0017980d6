package machine

import "github.com/govmm/govmm/devices"

// Metrics are the machine's counters, for the control API's /v1/metrics:
// what each vCPU's loop did besides dispatching exits, and what the
// devices could not tell the guest.
type Metrics struct {
	Paused bool          `json:"paused"`
	VCPUs  []VCPUMetrics `json:"vcpus"`
	// UnclaimedPort and UnclaimedMMIO count accesses no device took.
	UnclaimedPort uint64              `json:"unclaimed_port"`
	UnclaimedMMIO uint64              `json:"unclaimed_mmio"`
	Serial        devices.SerialStats `json:"serial"`
	// PITTicks and PITIRQErrors are the userspace PIT's (-pit user).
	PITTicks     uint64 `json:"pit_ticks,omitempty"`
	PITIRQErrors uint64 `json:"pit_irq_errors,omitempty"`
	// PCIUndecoded counts BARs left undecoded; DoorbellRings the guest
	// writes that reached a device through an ioeventfd, without an exit.
	PCIUndecoded  uint64 `json:"pci_undecoded_bars"`
	DoorbellRings uint64 `json:"doorbell_rings"`
}

// VCPUMetrics are one vCPU's.
type VCPUMetrics struct {
	ID    int    `json:"id"`
	State string `json:"state"`
	// Fixups are the instructions KVM's emulator gave up on that the VMM
	// performed (PVM hosts).
	FixupInt3    uint64 `json:"fixup_int3"`
	FixupFwait   uint64 `json:"fixup_fwait"`
	FixupLdmxcsr uint64 `json:"fixup_ldmxcsr"`
	FixupStmxcsr uint64 `json:"fixup_stmxcsr"`
	FixupFaults  uint64 `json:"fixup_faults"`
}

// Metrics reads the counters. It may be called at any time.
func (m *Machine) Metrics() Metrics {
	mt := Metrics{
		Paused:        m.Paused(),
		UnclaimedPort: m.plat.io.Unclaimed.Load(),
		UnclaimedMMIO: m.plat.mmio.Unclaimed.Load(),
		Serial:        m.plat.serial.Stats(),
	}
	for _, v := range m.vcpus {
		f := &v.Fixups
		mt.VCPUs = append(mt.VCPUs, VCPUMetrics{
			ID: v.ID, State: v.RunState().String(),
			FixupInt3: f.Int3.Load(), FixupFwait: f.Fwait.Load(), FixupLdmxcsr: f.Ldmxcsr.Load(),
			FixupStmxcsr: f.Stmxcsr.Load(), FixupFaults: f.Faults.Load(),
		})
	}
	if m.pit != nil {
		mt.PITTicks, mt.PITIRQErrors = m.pit.Stats()
	}
	if m.pci != nil {
		mt.PCIUndecoded = m.pci.bus.Undecoded.Load()
		mt.DoorbellRings = m.pci.irqs.rings.Load()
	}
	return mt
}
