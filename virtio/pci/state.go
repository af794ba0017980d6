package pci

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/virtio"
)

// StateVersion is the layout version of State: a State of another shape
// bumps it, and the machine refuses a saved state of another version.
const StateVersion = 1

// State is a transport's state for snapshots and migration: its PCI
// function (configuration space, MSI-X table and pending bits, INTx), the
// common configuration the driver programmed (virtio 1.2, 4.1.4.3), the
// ISR (4.1.4.5) and, for an active device, where the device is in each
// queue's rings (2.7.13, 2.7.14). The device's own configuration is the
// device's (the machine saves what of it is not fixed by its backend).
type State struct {
	Function pci.FunctionState

	DeviceFeatureSelect uint32
	DriverFeatureSelect uint32
	// DriverFeatures are the bits the driver wrote; negotiated once
	// Status has FEATURES_OK.
	DriverFeatures uint64
	QueueSelect    uint16
	Status         uint8 // device_status (2.1)
	Generation     uint8 // config_generation (4.1.4.3)
	ConfigVector   uint16
	ISR            uint8
	// Active says the device runs (the driver set DRIVER_OK and the
	// device took its queues): restore starts it on the saved rings.
	Active bool
	Queues []QueueState
}

// QueueState is one queue as the driver configured it, and, while the
// device is active, the device's ring indices: the next available entry
// it takes and the used index it last published (both free-running
// 16-bit counters, 2.7.6 and 2.7.8).
type QueueState struct {
	Size                 uint16
	Enabled              bool
	Desc, Driver, Device uint64
	Vector               uint16
	NextAvail, NextUsed  uint16
}

// ErrNotQuiesced is State's answer for an active device that is still
// working: pause it (Quiesce) first.
var ErrNotQuiesced = errors.New("virtio-pci: the device is working: quiesce it (pause the guest) before reading its state")

// Quiesce stops the device's work for a pause: it returns once the
// requests in flight are done and returned to the driver (with their
// interrupts sent), and the device then neither touches guest RAM nor
// interrupts until Resume. Notifications the driver sends meanwhile wait
// for Resume.
func (t *Transport) Quiesce() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quiesceLocked()
}

// quiesceLocked is Quiesce; mu is held.
func (t *Transport) quiesceLocked() {
	if t.active && !t.quiesced {
		t.dev.Reset() // stops the workers; a request in progress finishes first
		t.quiesced = true
	}
}

// QuiesceContext is Quiesce that gives up when ctx ends first (a request
// stuck on its backend: a disk that does not answer), returning ctx's
// error: the device then finishes that request on its own and goes on
// working, as if resumed, since the pause that wanted it stopped failed.
func (t *Transport) QuiesceContext(ctx context.Context) error {
	var (
		mu              sync.Mutex
		stopped, gaveUp bool
		done            = make(chan struct{})
	)
	go func() {
		defer close(done)
		t.mu.Lock()
		defer t.mu.Unlock()
		t.quiesceLocked()
		mu.Lock()
		stopped = true
		resume := gaveUp
		mu.Unlock()
		if resume {
			t.resumeLocked() // before any other pause can see it stopped
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	mu.Lock()
	if stopped {
		mu.Unlock()
		<-done
		return nil
	}
	gaveUp = true
	mu.Unlock()
	return fmt.Errorf("virtio-pci %s: its request in flight did not finish: %w", t.name, context.Cause(ctx))
}

// Resume lets a quiesced device go on from where it stopped (and starts
// a restored one): its workers begin again on the same queues, and each
// queue is looked at once as if the driver had notified it, since a
// notification may have come, or been lost with the process it reached,
// while the device was stopped.
func (t *Transport) Resume() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resumeLocked()
}

// resumeLocked is Resume; mu is held.
func (t *Transport) resumeLocked() {
	if !t.active || !t.quiesced {
		return
	}
	t.quiesced = false
	if err := t.dev.Activate(t.activation); err != nil {
		t.active = false
		t.deviceBroken(err)
		return
	}
	for i, q := range t.queues {
		if t.activation.Queues[i] != nil {
			q.ring()
		}
	}
}

// State returns the transport's state. An active device must be
// quiesced (ErrNotQuiesced otherwise).
func (t *Transport) State() (State, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active && !t.quiesced {
		return State{}, ErrNotQuiesced
	}
	s := State{
		Function:            t.fn.State(),
		DeviceFeatureSelect: t.devFeatSel,
		DriverFeatureSelect: t.drvFeatSel,
		DriverFeatures:      t.drvFeatures,
		QueueSelect:         t.queueSel,
		Status:              uint8(t.status.Load()),
		Generation:          uint8(t.generation.Load()),
		ConfigVector:        uint16(t.configVector.Load()),
		Active:              t.active,
	}
	t.isrMu.Lock()
	s.ISR = t.isr
	t.isrMu.Unlock()
	for i, q := range t.queues {
		qs := QueueState{Size: q.size, Enabled: q.enabled, Desc: q.desc, Driver: q.driver, Device: q.used, Vector: uint16(q.vector.Load())}
		if t.active {
			if vq := t.activation.Queues[i]; vq != nil {
				qs.NextAvail, qs.NextUsed = vq.Indices()
			}
		}
		s.Queues = append(s.Queues, qs)
	}
	return s, nil
}

// Restore puts a transport freshly built for the same device (same
// queues, same backend's features) in state s. Everything s says is
// checked as a driver's writes would be: a state this device could not
// have reached is refused (a corrupt file, or another device's state),
// never half applied to the device's work. An active device is left
// quiesced on the saved rings: Resume starts it, once the vCPUs' state
// (whose local APICs its interrupts reach) is in place too.
func (t *Transport) Restore(s State) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active || t.status.Load() != 0 {
		return fmt.Errorf("virtio-pci %s: restore into a device the driver has already set up: restore into a new machine", t.name)
	}
	if err := t.checkState(s); err != nil {
		return fmt.Errorf("virtio-pci %s: the saved state %w", t.name, err)
	}
	if err := t.fn.Restore(s.Function); err != nil {
		return err
	}
	t.devFeatSel, t.drvFeatSel, t.drvFeatures, t.queueSel = s.DeviceFeatureSelect, s.DriverFeatureSelect, s.DriverFeatures, s.QueueSelect
	for i, q := range t.queues {
		qs := s.Queues[i]
		q.size, q.enabled, q.desc, q.driver, q.used = qs.Size, qs.Enabled, qs.Desc, qs.Driver, qs.Device
		q.vector.Store(uint32(qs.Vector))
	}
	t.configVector.Store(uint32(s.ConfigVector))
	t.generation.Store(uint32(s.Generation))
	t.status.Store(uint32(s.Status))
	t.isrMu.Lock()
	t.isr = s.ISR // the INTx line is the function's, restored with it
	t.isrMu.Unlock()
	if !s.Active {
		return nil
	}
	a, err := t.buildQueues()
	if err != nil {
		t.resetLocked()
		return fmt.Errorf("virtio-pci %s: the saved state is corrupt: its queues do not fit the guest's RAM (%w)", t.name, err)
	}
	for i, vq := range a.Queues {
		if vq != nil {
			vq.SetIndices(s.Queues[i].NextAvail, s.Queues[i].NextUsed)
		}
	}
	t.active, t.quiesced, t.activation = true, true, a
	return nil
}

// checkState refuses a state this transport could not be in; mu is held.
func (t *Transport) checkState(s State) error {
	if len(s.Queues) != len(t.queues) {
		return fmt.Errorf("has %d queues, this device %d: it is another device's state", len(s.Queues), len(t.queues))
	}
	const known = virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK | virtio.StatusFeaturesOK | virtio.StatusNeedsReset | virtio.StatusFailed
	if s.Status&^known != 0 {
		return fmt.Errorf("has device status %#x, with bits virtio does not define (2.1): it is corrupt", s.Status)
	}
	if s.Status&virtio.StatusFeaturesOK != 0 {
		if extra := s.DriverFeatures &^ t.offered; extra != 0 {
			return fmt.Errorf("has negotiated feature bits %#x this device does not offer: its backend differs from the saved guest's (a TAP without offloads, a read-only disk); give the backend it ran with", extra)
		}
		if s.DriverFeatures&virtio.FeatureVersion1 == 0 {
			return errors.New("has FEATURES_OK without VERSION_1, which this device never accepts: it is corrupt")
		}
	}
	if t.checkVector(s.ConfigVector) != uint32(s.ConfigVector) && s.ConfigVector != NoVector {
		return fmt.Errorf("maps configuration changes to MSI-X vector %d of the device's %d: it is corrupt", s.ConfigVector, len(t.queues)+1)
	}
	if s.ISR&^(isrQueue|isrConfig) != 0 {
		return fmt.Errorf("has ISR status %#x, with bits virtio does not define (4.1.4.5): it is corrupt", s.ISR)
	}
	if s.Active && (s.Status&(virtio.StatusDriverOK|virtio.StatusFeaturesOK) != virtio.StatusDriverOK|virtio.StatusFeaturesOK || s.Status&virtio.StatusFailed != 0) {
		return fmt.Errorf("says the device runs, with device status %#x (it runs only after FEATURES_OK and DRIVER_OK, 3.1.1): it is corrupt", s.Status)
	}
	for i, q := range s.Queues {
		if t.checkVector(q.Vector) != uint32(q.Vector) && q.Vector != NoVector {
			return fmt.Errorf("maps queue %d to MSI-X vector %d of the device's %d: it is corrupt", i, q.Vector, len(t.queues)+1)
		}
		if !s.Active || !q.Enabled {
			if q.NextAvail != 0 || q.NextUsed != 0 {
				return fmt.Errorf("has ring indices for queue %d, which the device does not use: it is corrupt", i)
			}
			continue
		}
		if q.Size == 0 || q.Size > t.sizes[i] || q.Size&(q.Size-1) != 0 {
			return fmt.Errorf("has queue %d of size %d; this device's is a power of two up to %d (4.1.4.3.2): it is corrupt, or another device's", i, q.Size, t.sizes[i])
		}
		if held := q.NextAvail - q.NextUsed; held > q.Size {
			return fmt.Errorf("has the device %d chains ahead of queue %d's used ring, more than the queue's %d entries (2.7.13): it is corrupt", held, i, q.Size)
		}
	}
	return nil
}
