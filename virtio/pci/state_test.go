package pci

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
	"github.com/govmm/govmm/virtio/rng"
)

// runningRig is a rig whose virtio-rng the driver has set up: MSI-X on
// (configuration vector 0, queue vector 1), EVENT_IDX, one queue of 8 at
// 0x10000, DRIVER_OK, and one request answered.
func runningRig(t *testing.T) (*rig, *queuetest.Driver) {
	t.Helper()
	r := newRig(t, rng.NewFromSource(counting()), nil)
	r.enableMSIX(2)
	if st := r.negotiate(virtio.FeatureVersion1 | queue.FeatureEventIdx); st&virtio.StatusFeaturesOK == 0 {
		t.Fatalf("status %#x after negotiation, want FEATURES_OK", st)
	}
	r.write(regConfigMSIXVector, 2, 0)
	d := r.setupQueue(0, 8, 0x10000, 1)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	request(t, r, d)
	return r, d
}

// request makes one 16-byte request available, notifies, and waits for
// its answer through the queue's vector.
func request(t *testing.T, r *rig, d *queuetest.Driver) {
	t.Helper()
	h, _ := d.Chain(queuetest.Buf{Len: 16, Write: true})
	d.Publish(h)
	d.SetUsedEvent(d.AvailEvent()) // an interrupt for this one
	r.kick(0)
	r.waitMSI(0x41)
	if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(h) || used[0].Len != 16 {
		t.Fatalf("used = %+v, want [{%d 16}]", used, h)
	}
}

// savedState quiesces r's device and returns its state.
func savedState(t testing.TB, r *rig) State {
	t.Helper()
	r.tr.Quiesce()
	s, err := r.tr.State()
	if err != nil {
		t.Fatalf("State() = %v", err)
	}
	return s
}

// TestStateRoundTrip: a transport restored from another's state, over
// the same guest RAM, shows the driver the same registers and goes on
// serving the same queue where the first stopped: through JSON, as a
// snapshot carries it.
func TestStateRoundTrip(t *testing.T) {
	r, d := runningRig(t)
	if _, err := r.tr.State(); !errors.Is(err, ErrNotQuiesced) {
		t.Errorf("State() of a working device = %v, want ErrNotQuiesced", err)
	}
	// A notification while quiesced is served only after Resume.
	r.tr.Quiesce()
	h, _ := d.Chain(queuetest.Buf{Len: 16, Write: true})
	d.Publish(h)
	d.SetUsedEvent(d.AvailEvent())
	r.kick(0)
	select {
	case m := <-r.irqs.sent:
		t.Fatalf("MSI %#x from a quiesced device", m.Data)
	case <-time.After(50 * time.Millisecond):
	}
	if used := d.TakeUsed(); len(used) != 0 {
		t.Fatalf("a quiesced device used %+v", used)
	}
	r.tr.Resume()
	r.waitMSI(0x41)
	if used := d.TakeUsed(); len(used) != 1 {
		t.Fatalf("after Resume: used = %+v, want the request made while quiesced", used)
	}

	s := savedState(t, r)
	if !s.Active || s.Queues[0].NextAvail != 2 || s.Queues[0].NextUsed != 2 || s.Queues[0].Vector != 1 || s.ConfigVector != 0 {
		t.Fatalf("State() = %+v, want an active device at ring indices 2, queue vector 1, configuration vector 0", s)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	// A request made while the saved device is stopped: its notification
	// is lost with it, as with the process a snapshot was taken of.
	h, _ = d.Chain(queuetest.Buf{Len: 16, Write: true})
	d.Publish(h)
	d.SetUsedEvent(d.AvailEvent())

	r2 := newRigOn(t, rng.NewFromSource(counting()), nil, r.mem)
	if err := r2.tr.Restore(back); err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	r2.bar = r2.tr.Function().BARAddress(BAR)
	regs := []struct {
		name string
		off  uint64
		n    int
	}{
		{"device_status", regDeviceStatus, 1}, {"config_msix_vector", regConfigMSIXVector, 2},
		{"queue_size", regQueueSize, 2}, {"queue_msix_vector", regQueueMSIXVector, 2}, {"queue_enable", regQueueEnable, 2},
		{"queue_desc", regQueueDesc, 8}, {"queue_driver", regQueueDriver, 8}, {"queue_device", regQueueDevice, 8},
	}
	for _, reg := range regs {
		if got, want := r2.read(reg.off, reg.n), r.read(reg.off, reg.n); got != want {
			t.Errorf("restored %s = %#x, want %#x", reg.name, got, want)
		}
	}
	if !r2.tr.Function().MSIXEnabled() {
		t.Error("MSI-X is off in the restored function")
	}
	r2.tr.Resume() // serves the request the lost notification was for
	r2.waitMSI(0x41)
	if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(h) {
		t.Fatalf("restored device: used = %+v, want the request made before the restore", used)
	}
	request(t, r2, d) // and new ones, through its own doorbell
	if got, err := r2.tr.State(); !errors.Is(err, ErrNotQuiesced) {
		t.Errorf("State() of the restored, running device = %+v, %v; want ErrNotQuiesced", got, err)
	}
	s2 := savedState(t, r2)
	if s2.Queues[0].NextAvail != 4 || s2.Queues[0].NextUsed != 4 {
		t.Errorf("restored device's indices = %d, %d; want 4, 4", s2.Queues[0].NextAvail, s2.Queues[0].NextUsed)
	}
}

// TestStateOfIdleDevice: a device the driver never set up restores to
// one it may set up as usual.
func TestStateOfIdleDevice(t *testing.T) {
	r := newRig(t, rng.NewFromSource(counting()), nil)
	s := savedState(t, r)
	r2 := newRigOn(t, rng.NewFromSource(counting()), nil, r.mem)
	if err := r2.tr.Restore(s); err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	r2.tr.Resume() // nothing to start
	r2.bar = r2.tr.Function().BARAddress(BAR)
	r2.cfgWrite(0x04, 2, 6)
	r2.enableMSIX(2)
	r2.negotiate(virtio.FeatureVersion1)
	d := r2.setupQueue(0, 8, 0x10000, 1)
	r2.write(regDeviceStatus, 1, 0xF)
	request(t, r2, d)
}

// TestRestoreRefuses: states this device could not be in are refused
// with a reason, and the device is left as it was built.
func TestRestoreRefuses(t *testing.T) {
	r, _ := runningRig(t)
	good := savedState(t, r)
	tests := []struct {
		name   string
		change func(s *State)
		want   string
	}{
		{"another device's queue count", func(s *State) { s.Queues = append(s.Queues, QueueState{}) }, "2 queues"},
		{"unknown status bits", func(s *State) { s.Status |= 0x10 }, "bits virtio does not define"},
		{"a feature not offered", func(s *State) { s.DriverFeatures |= 1 << 40 }, "does not offer"},
		{"FEATURES_OK without VERSION_1", func(s *State) { s.DriverFeatures &^= virtio.FeatureVersion1 }, "without VERSION_1"},
		{"active without DRIVER_OK", func(s *State) { s.Status &^= virtio.StatusDriverOK }, "says the device runs"},
		{"queue larger than offered", func(s *State) { s.Queues[0].Size = rng.QueueSize * 2 }, "size"},
		{"queue size not a power of two", func(s *State) { s.Queues[0].Size = 6 }, "size 6"},
		{"device far ahead of the used ring", func(s *State) { s.Queues[0].NextAvail = 100 }, "chains ahead"},
		{"queue vector past the table", func(s *State) { s.Queues[0].Vector = 9 }, "vector 9"},
		{"config vector past the table", func(s *State) { s.ConfigVector = 5 }, "vector 5"},
		{"ISR bits", func(s *State) { s.ISR = 0x80 }, "ISR"},
		{"queue outside RAM", func(s *State) { s.Queues[0].Desc = rigRAM - 16 }, "do not fit the guest's RAM"},
		{"indices of an unused queue", func(s *State) { s.Active = false }, "does not use"},
		{"another device's function", func(s *State) { s.Function.Config[0] ^= 0xFF }, "another device"},
		{"another device's MSI-X table", func(s *State) { s.Function.MSIXTable = s.Function.MSIXTable[:16] }, "MSI-X table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			s.Queues = append([]QueueState(nil), good.Queues...)
			s.Function.MSIXTable = append([]byte(nil), good.Function.MSIXTable...)
			tt.change(&s)
			r2 := newRigOn(t, rng.NewFromSource(counting()), nil, r.mem)
			err := r2.tr.Restore(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore() = %v, want an error containing %q", err, tt.want)
			}
			if r2.tr.active || r2.tr.Status() != 0 {
				t.Errorf("after a refused restore: active %v, status %#x; want a device as built", r2.tr.active, r2.tr.Status())
			}
		})
	}
	// Into a device already in use.
	if err := r.tr.Restore(good); err == nil {
		t.Error("Restore() into a device the driver set up succeeded")
	}
}

// FuzzRestoreState restores arbitrary JSON as a transport's state (a
// snapshot's state file is JSON, its checksum no guard against a file
// written to mislead): it must be refused or, if accepted, give a device
// that serves and resets without harming the VMM.
func FuzzRestoreState(f *testing.F) {
	r := newRigOn(f, rng.NewFromSource(counting()), nil, queuetest.NewMemory(rigRAM))
	s := savedState(f, r)
	good, err := json.Marshal(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"Status":15,"DriverFeatures":4294967296,"Active":true,"Queues":[{"Size":8,"Enabled":true,"Desc":65536,"Driver":69632,"Device":73728,"Vector":1,"NextAvail":3,"NextUsed":1}]}`))
	f.Add([]byte(`{"Queues":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s State
		if json.Unmarshal(data, &s) != nil {
			return
		}
		r := newRigOn(t, rng.NewFromSource(counting()), nil, queuetest.NewMemory(rigRAM))
		if err := r.tr.Restore(s); err != nil {
			if r.tr.active {
				t.Fatalf("Restore() = %v, yet the device is active", err)
			}
			return
		}
		r.tr.Resume()
		r.tr.Quiesce()
		if _, err := r.tr.State(); err != nil {
			t.Fatalf("State() of an accepted state = %v", err)
		}
		r.tr.Resume()
		r.write(regDeviceStatus, 1, 0) // a reset stops whatever runs
		if st := r.read(regDeviceStatus, 1); st != 0 {
			t.Fatalf("status after reset = %#x", st)
		}
	})
}

// stuckDevice is virtio-rng whose first Reset waits for release, as a
// device waits for a request its backend does not answer.
type stuckDevice struct {
	*rng.Device
	release chan struct{}
	resets  atomic.Int32
}

func (d *stuckDevice) Reset() {
	if d.resets.Add(1) == 1 {
		<-d.release
	}
	d.Device.Reset()
}

// TestQuiesceContext: a device that cannot stop before the pause's
// context ends makes QuiesceContext give up with the context's error;
// once it stops it works on, as after a failed pause, and a later pause
// quiesces it.
func TestQuiesceContext(t *testing.T) {
	dev := &stuckDevice{Device: rng.NewFromSource(counting()), release: make(chan struct{})}
	r := newRig(t, dev, nil)
	r.enableMSIX(2)
	r.negotiate(virtio.FeatureVersion1 | queue.FeatureEventIdx)
	d := r.setupQueue(0, 8, 0x10000, 1)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	request(t, r, d)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := r.tr.QuiesceContext(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("QuiesceContext() = %v, want the deadline, saying the request did not finish", err)
	}
	close(dev.release) // the request finishes: the device goes on
	request(t, r, d)
	if err := r.tr.QuiesceContext(context.Background()); err != nil {
		t.Fatalf("QuiesceContext() of a device that stops = %v", err)
	}
	if _, err := r.tr.State(); err != nil {
		t.Errorf("State() after a quiesce = %v", err)
	}
	r.tr.Resume()
	request(t, r, d)
}
