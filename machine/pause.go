package machine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// mobility is what a machine keeps for pausing, snapshots, restore and
// migration (pause.go, state.go, devstate.go, dirty.go).
type mobility struct {
	// op orders Pause, Resume and WithPause, and is held for all of
	// WithPause, so nothing resumes the guest under it.
	op sync.Mutex
	// mu guards the fields below.
	mu     sync.Mutex
	paused bool
	// time is the guest's clocks at the pause, which Resume sets back
	// (clock.go).
	time guestTime
	// tscFollowsHost: KVM cannot set this VM's TSC (PVM hosts, whose
	// guest reads the host's own TSC): the guest's time then runs on
	// through pauses and restores, the kvmclock with it (clock.go).
	tscFollowsHost bool
	pitFrozen      devices.PITState // the userspace PIT's state while frozen
	pausedAt       time.Time

	msrs []uint32 // KVM's saveable MSRs (KVM_GET_MSR_INDEX_LIST)

	stateful []statefulDevice // devices that joined with addDevice (virtio)
	// devicesStarted: Run started the restored devices (startRestored).
	devicesStarted bool
	quiescers      []Quiescer
	quiesced       []Quiescer // those quiesced by the current pause
	dirty          dirtyLogs
	stopping       atomic.Bool // Stop was called
}

// Quiescer is a device with work of its own besides the vCPUs' exits (a
// block device's request workers, a network device's receive loop). The
// machine quiesces it after the vCPUs have paused and before it reads any
// state: Quiesce returns once the device has finished what is in flight
// (block requests completed, written to the guest's RAM and flushed to
// the backend) and will neither touch guest RAM nor raise an interrupt
// until Resume. Resume lets it go on.
type Quiescer interface {
	Quiesce(ctx context.Context) error
	Resume()
}

// addQuiescer makes q part of every pause, in the order added; resumed in
// the opposite order.
func (m *Machine) addQuiescer(q Quiescer) {
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	m.mob.quiescers = append(m.mob.quiescers, q)
}

// ErrPaused and ErrNotPaused are Pause's and Resume's answers when the
// machine already is, or is not, paused.
var (
	ErrPaused    = errors.New("the guest is already paused")
	ErrNotPaused = errors.New("the guest is not paused")
)

// Pause stops the guest where it is: every vCPU out of KVM_RUN and held,
// every device's work finished (see Quiescer), the userspace PIT frozen,
// the serial port's output written out, and the guest's clocks read (each
// vCPU's TSC and TSC deadline, then the kvmclock) so that Resume can set
// them back. While paused, SaveState may read the machine. It returns
// ErrPaused when it is paused already, and undoes what it did when it
// fails (ctx ending included).
//
// Guest time while paused: see clock.go. Where KVM can set the TSC it
// stands still, as across a snapshot and its restore; KVM_KVMCLOCK_CTRL
// then tells the guest it was paused, so its soft-lockup watchdog does not
// take the pause for a hang.
func (m *Machine) Pause(ctx context.Context) error {
	m.mob.op.Lock()
	defer m.mob.op.Unlock()
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	if m.mob.paused {
		return ErrPaused
	}
	return m.pauseLocked(ctx)
}

func (m *Machine) pauseLocked(ctx context.Context) (err error) {
	var held []*vcpu.VCPU
	defer func() {
		if err != nil {
			for _, v := range held {
				_ = v.Resume() // a vCPU that stopped meanwhile cannot resume, and need not
			}
		}
	}()
	for _, v := range m.vcpus {
		if err := v.Pause(ctx); err != nil {
			if v.RunState() == vcpu.Stopped {
				return fmt.Errorf("pausing the guest: it has stopped (%w)", err)
			}
			return fmt.Errorf("pausing the guest: %w", err)
		}
		held = append(held, v)
	}
	m.mob.quiesced = m.mob.quiesced[:0]
	for _, q := range m.mob.quiescers {
		if err := q.Quiesce(ctx); err != nil {
			m.unquiesce()
			return fmt.Errorf("pausing the guest: a device did not finish its work: %w", err)
		}
		m.mob.quiesced = append(m.mob.quiesced, q)
	}
	if m.pit != nil {
		m.mob.pitFrozen = m.pit.Freeze()
	}
	if m.mob.time, err = m.readTime(); err != nil {
		m.thaw()
		return fmt.Errorf("pausing the guest: %w", err)
	}
	// The guest's output so far reaches its reader; what the UART still
	// holds is in its state.
	if err := m.plat.serial.Flush(ctx, serialStall); err != nil {
		fmt.Fprintf(m.log, "govmm: pause: %v\n", err)
	}
	m.mob.paused, m.mob.pausedAt = true, time.Now()
	return nil
}

// unquiesce resumes the devices the current pause quiesced.
func (m *Machine) unquiesce() {
	for i := len(m.mob.quiesced) - 1; i >= 0; i-- {
		m.mob.quiesced[i].Resume()
	}
	m.mob.quiesced = m.mob.quiesced[:0]
}

// thaw lets the devices go on: the PIT from where it froze, then the
// quiesced ones.
func (m *Machine) thaw() {
	if m.pit != nil {
		m.pit.Restore(m.mob.pitFrozen)
	}
	m.unquiesce()
}

// Resume lets a paused guest go on (ErrNotPaused if it is not paused).
func (m *Machine) Resume() error {
	m.mob.op.Lock()
	defer m.mob.op.Unlock()
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	if !m.mob.paused {
		return ErrNotPaused
	}
	return m.resumeLocked()
}

func (m *Machine) resumeLocked() error {
	if err := m.setTime(m.mob.time); err != nil {
		return fmt.Errorf("resuming the guest: %w", err)
	}
	m.tellPaused()
	m.thaw()
	m.mob.paused = false
	var errs []error
	for _, v := range m.vcpus {
		if err := v.Resume(); err != nil && v.RunState() != vcpu.Stopped {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("resuming the guest: %w", errors.Join(errs...))
	}
	return nil
}

// tellPaused sets each vCPU's PVCLOCK_GUEST_STOPPED (KVM_KVMCLOCK_CTRL),
// where the guest uses kvmclock. KVM refuses it (EINVAL) for a guest that
// has not set kvmclock up, which then has no watchdog to tell.
func (m *Machine) tellPaused() {
	for _, hw := range m.hw {
		if err := hw.KVMClockCtrl(); err != nil && !kvm.IsNoKVMClock(err) {
			fmt.Fprintf(m.log, "govmm: resume: %v\n", err)
		}
	}
}

// Paused reports whether the guest is paused.
func (m *Machine) Paused() bool {
	m.mob.mu.Lock()
	defer m.mob.mu.Unlock()
	return m.mob.paused
}

// Stop ends the guest from outside, paused or running: Run returns with
// vcpu.StopCanceled. It may be called from any goroutine.
func (m *Machine) Stop() {
	m.mob.stopping.Store(true)
	m.finish(vcpu.StopCanceled, 0, false)
}

// Stopping reports whether Stop was called.
func (m *Machine) Stopping() bool { return m.mob.stopping.Load() }

// WithPause runs f with the guest paused: paused first unless it already
// was, and resumed after unless it was paused before. Pause and Resume
// wait for it, so nothing resumes the guest under f.
func (m *Machine) WithPause(ctx context.Context, f func() error) error {
	m.mob.op.Lock()
	defer m.mob.op.Unlock()
	m.mob.mu.Lock()
	was := m.mob.paused
	var err error
	if !was {
		err = m.pauseLocked(ctx)
	}
	m.mob.mu.Unlock()
	if err != nil {
		return err
	}
	err = f()
	if !was {
		m.mob.mu.Lock()
		err = errors.Join(err, m.resumeLocked())
		m.mob.mu.Unlock()
	}
	return err
}
