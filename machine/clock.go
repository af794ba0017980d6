package machine

import (
	"fmt"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// The guest's time across a pause, a snapshot or a migration.
//
// A Linux guest keeps time with two clocks it checks against each other:
// each vCPU's TSC and KVM's paravirtual kvmclock. Both are read together
// when the guest is paused (readTime) and written back together
// (setTime), so that they stay in step: restoring one without the other
// (QEMU's stop and cont restore the kvmclock alone) makes Linux's
// clocksource watchdog see them disagree by the pause and mark the TSC
// unstable.
//
// Where KVM can set the guest's TSC (hardware hosts, through the vCPU's
// TSC offset, KVM_VCPU_TSC_OFFSET), the guest's time stands still while
// it is paused, saved or in transit: CLOCK_MONOTONIC does not jump and its
// timers do not all fire at once; its wall clock falls behind, as after a
// suspend, until NTP or the agent sets it. The offset is used rather than
// an IA32_TSC write, which KVM may take for an attempt to line vCPUs up
// and ignore (within a second of what the TSC reads then).
//
// Where it cannot (PVM hosts: the guest reads the host's own TSC, and the
// offset does not stick), the TSC runs on with the host's, and so the
// kvmclock must too: setTime moves it on by the wall-clock time since it
// was read, which for a migration assumes the two hosts' clocks agree.

// guestTime is the guest's clocks at one instant.
type guestTime struct {
	// TSCs holds each vCPU's IA32_TSC and IA32_TSC_DEADLINE.
	TSCs  [][]kvm.MSREntry
	Clock uint64    // the kvmclock, in nanoseconds
	Wall  time.Time // the host's wall clock then
}

// readTime reads every vCPU's TSC and deadline, then the kvmclock: the
// vCPUs must be paused.
func (m *Machine) readTime() (guestTime, error) {
	var t guestTime
	for _, v := range m.vcpus {
		msrs, err := v.Time()
		if err != nil {
			return t, err
		}
		t.TSCs = append(t.TSCs, msrs)
	}
	var c kvm.ClockData
	if err := m.vm.GetClock(&c); err != nil {
		return t, err
	}
	t.Clock, t.Wall = c.Clock, time.Now()
	return t, nil
}

// setTime puts the guest's clocks back to t (vCPUs not running): each
// vCPU's TSC by its offset, its deadline after it, then the kvmclock, one
// right after another. Where the TSC follows the host's, the kvmclock is
// moved on by the time since t was read instead.
func (m *Machine) setTime(t guestTime) error {
	clock := t.Clock
	if m.mob.tscFollowsHost {
		if since := time.Since(t.Wall); since > 0 && !t.Wall.IsZero() {
			clock += uint64(since)
		}
	}
	for i, v := range m.vcpus {
		if i >= len(t.TSCs) {
			break
		}
		msrs := t.TSCs[i]
		if !m.mob.tscFollowsHost {
			if err := m.setTSC(i, msrs); err != nil {
				return err
			}
		}
		// The deadline, absolute on the TSC: KVM arms the LAPIC timer
		// again from it.
		var deadline []kvm.MSREntry
		for _, e := range msrs {
			if e.Index == vcpu.MSRTSCDeadline {
				deadline = append(deadline, e)
			}
		}
		if err := v.SetTime(deadline); err != nil {
			return err
		}
	}
	c := kvm.ClockData{Clock: clock}
	return m.vm.SetClock(&c)
}

// setTSC makes vCPU i's TSC read what msrs hold for IA32_TSC now: its
// offset moves by the difference between that and what it reads.
func (m *Machine) setTSC(i int, msrs []kvm.MSREntry) error {
	want, ok := uint64(0), false
	for _, e := range msrs {
		if e.Index == vcpu.MSRTSC {
			want, ok = e.Data, true
		}
	}
	if !ok {
		return nil
	}
	now, err := m.vcpus[i].Time()
	if err != nil {
		return err
	}
	var have uint64
	for _, e := range now {
		if e.Index == vcpu.MSRTSC {
			have = e.Data
		}
	}
	off, err := m.hw[i].TSCOffset()
	if err != nil {
		return err
	}
	return m.hw[i].SetTSCOffset(off + (want - have)) // modulo 2^64, as the TSC
}

// probeTSC finds whether KVM can set this VM's TSC: it moves vCPU 0's
// offset (not yet run) and reads it back.
func (m *Machine) probeTSC() error {
	hw := m.hw[0]
	if !hw.HasTSCOffset() {
		m.mob.tscFollowsHost = true
		return nil
	}
	off, err := hw.TSCOffset()
	if err != nil {
		return err
	}
	if err := hw.SetTSCOffset(off + 1); err != nil {
		return err
	}
	moved, err := hw.TSCOffset()
	if err != nil {
		return err
	}
	m.mob.tscFollowsHost = moved != off+1
	if err := hw.SetTSCOffset(off); err != nil {
		return fmt.Errorf("putting vCPU 0's TSC offset back: %w", err)
	}
	if m.cfg.Verbose && m.mob.tscFollowsHost {
		fmt.Fprintln(m.log, "govmm: KVM cannot set this guest's TSC (it reads the host's): its time runs on through pauses and restores")
	}
	return nil
}
