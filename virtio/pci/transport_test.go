package pci

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
	"github.com/govmm/govmm/virtio/rng"
)

// counting is an entropy source that gives 0, 1, 2, ...
func counting() func(p []byte) (int, error) {
	var n byte
	return func(p []byte) (int, error) {
		for i := range p {
			p[i] = n
			n++
		}
		return len(p), nil
	}
}

// TestCapabilities: the four virtio structures (4.1.4) in order, each
// naming BAR0 and its place, then MSI-X with one vector per queue and one
// for configuration changes; IDs per 4.1.2.
func TestCapabilities(t *testing.T) {
	r := newRig(t, rng.NewFromSource(counting()), nil)
	if id := r.cfgRead(0, 4); id != 0x1044<<16|VendorID {
		t.Errorf("vendor:device = %#x, want 1af4:1044 (virtio-rng, modern)", id)
	}
	if rev := r.cfgRead(pci.RegRevision, 1); rev != 1 {
		t.Errorf("revision = %d, want 1 (a modern-only device)", rev)
	}
	type vcap struct{ typ, bar, off, length, mult uint64 }
	var got []vcap
	for p := r.cfgRead(pci.RegCapPtr, 1); p != 0; p = r.cfgRead(p+1, 1) {
		if r.cfgRead(p, 1) != pci.CapIDVendor {
			continue
		}
		c := vcap{r.cfgRead(p+3, 1), r.cfgRead(p+4, 1), r.cfgRead(p+8, 4), r.cfgRead(p+12, 4), 0}
		if c.typ == capNotify {
			c.mult = r.cfgRead(p+16, 4)
		}
		got = append(got, c)
	}
	want := []vcap{{capCommon, 0, 0, commonCfgSize, 0}, {capISR, 0, ISROffset, 1, 0}, {capDevice, 0, DeviceOffset, structSize, 0}, {capNotify, 0, NotifyOffset, 4, 4}}
	if len(got) != len(want) {
		t.Fatalf("virtio capabilities = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("capability %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if r.msix == 0 || r.cfgRead(r.msix+2, 2)&0x7FF != 1 {
		t.Errorf("MSI-X capability at %#x with table size field %d, want 1 (two vectors)", r.msix, r.cfgRead(r.msix+2, 2)&0x7FF)
	}
}

// TestFeatureNegotiation (2.2, 3.1.1): FEATURES_OK sticks only for a
// subset of the offer that includes VERSION_1.
func TestFeatureNegotiation(t *testing.T) {
	var log syncBuffer
	r := newRig(t, rng.NewFromSource(counting()), &log)
	offer := r.offered()
	if offer&virtio.FeatureVersion1 == 0 || offer&queue.FeatureEventIdx == 0 || offer&queue.FeatureIndirectDesc == 0 {
		t.Fatalf("offered features %#x lack VERSION_1, EVENT_IDX or INDIRECT_DESC", offer)
	}
	tests := []struct {
		name     string
		features uint64
		ok       bool
	}{
		{"legacy driver (no VERSION_1)", queue.FeatureEventIdx, false},
		{"a bit not offered", virtio.FeatureVersion1 | 1<<40, false},
		{"VERSION_1 only", virtio.FeatureVersion1, true},
		{"everything offered", offer, true},
	}
	for _, tt := range tests {
		st := r.negotiate(tt.features)
		if got := st&virtio.StatusFeaturesOK != 0; got != tt.ok {
			t.Errorf("%s: FEATURES_OK %v after negotiating %#x, want %v", tt.name, got, tt.features, tt.ok)
		}
	}
	if !strings.Contains(log.String(), "legacy drivers are not supported") {
		t.Errorf("log lacks why a legacy driver was refused:\n%s", log.String())
	}
}

// TestRNGOverMSIX: the whole driver sequence, a request through the
// doorbell, the answer through the queue's MSI-X vector.
func TestRNGOverMSIX(t *testing.T) {
	r := newRig(t, rng.NewFromSource(counting()), nil)
	r.enableMSIX(2)
	if st := r.negotiate(virtio.FeatureVersion1 | queue.FeatureEventIdx); st&virtio.StatusFeaturesOK == 0 {
		t.Fatalf("status %#x after negotiation, want FEATURES_OK", st)
	}
	d := r.setupQueue(0, 8, 0x10000, 1)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	for round := 0; round < 3; round++ {
		h, addrs := d.Chain(queuetest.Buf{Len: 16, Write: true})
		d.Publish(h)
		d.SetUsedEvent(uint16(round)) // interrupt for this one
		r.kick(0)
		r.waitMSI(0x41)
		used := d.TakeUsed()
		if len(used) != 1 || used[0].ID != uint32(h) || used[0].Len != 16 {
			t.Fatalf("round %d: used = %+v, want [{%d 16}]", round, used, h)
		}
		want := make([]byte, 16)
		for i := range want {
			want[i] = byte(16*round + i)
		}
		if got := d.Read(addrs[0], 16); !bytes.Equal(got, want) {
			t.Errorf("round %d: buffer = % x, want % x", round, got, want)
		}
	}
	// A vector past the table reads back as NO_VECTOR (4.1.5.1.2).
	r.write(regQueueMSIXVector, 2, 7)
	if v := r.read(regQueueMSIXVector, 2); v != NoVector {
		t.Errorf("queue_msix_vector after writing 7 = %#x, want NO_VECTOR", v)
	}
}

// TestINTxFallback: with MSI-X off, a used buffer sets the ISR's queue
// bit and asserts INTx; reading the ISR clears it and deasserts (4.1.4.5).
func TestINTxFallback(t *testing.T) {
	r := newRig(t, rng.NewFromSource(counting()), nil)
	r.negotiate(virtio.FeatureVersion1)
	d := r.setupQueue(0, 4, 0x10000, NoVector)
	r.write(regDeviceStatus, 1, virtio.StatusAcknowledge|virtio.StatusDriver|virtio.StatusFeaturesOK|virtio.StatusDriverOK)
	h, _ := d.Chain(queuetest.Buf{Len: 4, Write: true})
	d.Publish(h)
	r.kick(0)
	select {
	case gsi := <-r.irqs.high:
		if gsi != rigGSI {
			t.Fatalf("GSI %d raised, want %d", gsi, rigGSI)
		}
	case <-time.After(timeout):
		t.Fatalf("INTx not asserted within %v of a used buffer with MSI-X off", timeout)
	}
	if isr := r.read(ISROffset, 1); isr != isrQueue {
		t.Errorf("ISR = %#x, want the queue bit", isr)
	}
	if r.irqs.intx(rigGSI) || r.read(ISROffset, 1) != 0 {
		t.Errorf("INTx still asserted, or ISR not cleared, after reading the ISR")
	}
}

// TestHostileDriver: each way a driver breaks the rules ends with the
// device in DEVICE_NEEDS_RESET, one log line, a configuration interrupt,
// and nothing else broken: a reset brings the device back.
func TestHostileDriver(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *rig) // after FEATURES_OK; sets DRIVER_OK and kicks
		want  string
	}{
		{"queue outside RAM", func(r *rig) {
			r.setupQueue(0, 8, rigRAM-0x40, 1)
			r.write(regDeviceStatus, 1, 0xF)
		}, "not backed by RAM"},
		{"queue larger than offered", func(r *rig) {
			r.setupQueue(0, rng.QueueSize*2, 0x10000, 1)
			r.write(regDeviceStatus, 1, 0xF)
		}, "larger than the device's"},
		{"queue size not a power of two", func(r *rig) {
			r.setupQueue(0, 6, 0x10000, 1)
			r.write(regDeviceStatus, 1, 0xF)
		}, "power of two"},
		{"descriptor loop", func(r *rig) {
			d := r.setupQueue(0, 8, 0x10000, 1)
			r.write(regDeviceStatus, 1, 0xF)
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: 0x20000, Len: 4, Flags: queue.DescFNext | queue.DescFWrite, Next: 0})
			d.Publish(0)
			r.kick(0)
		}, "a loop"},
		{"buffer past RAM", func(r *rig) {
			d := r.setupQueue(0, 8, 0x10000, 1)
			r.write(regDeviceStatus, 1, 0xF)
			d.PutDesc(d.Cfg.Desc, 0, queuetest.Desc{Addr: rigRAM - 2, Len: 4, Flags: queue.DescFWrite})
			d.Publish(0)
			r.kick(0)
		}, "not backed by RAM"},
		{"available index far ahead", func(r *rig) {
			d := r.setupQueue(0, 8, 0x10000, 1)
			r.write(regDeviceStatus, 1, 0xF)
			d.SetAvailIdx(100)
			r.kick(0)
		}, "more than the queue's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log syncBuffer
			r := newRig(t, rng.NewFromSource(counting()), &log)
			r.enableMSIX(2)
			r.negotiate(virtio.FeatureVersion1 | queue.FeatureIndirectDesc)
			r.write(regConfigMSIXVector, 2, 0)
			tt.setup(r)
			r.waitMSI(0x40) // the configuration change
			if st := r.read(regDeviceStatus, 1); st&virtio.StatusNeedsReset == 0 {
				t.Fatalf("status %#x, want DEVICE_NEEDS_RESET", st)
			}
			if lines := strings.Count(log.String(), "needs a reset"); lines != 1 || !strings.Contains(log.String(), tt.want) {
				t.Errorf("log = %q, want one line containing %q", log.String(), tt.want)
			}
			if r.tr.Broken() != 1 {
				t.Errorf("Broken() = %d, want 1", r.tr.Broken())
			}
			// A reset clears it, and the device works again.
			r.write(regDeviceStatus, 1, 0)
			if st := r.read(regDeviceStatus, 1); st != 0 {
				t.Fatalf("status after reset = %#x, want 0", st)
			}
			r.negotiate(virtio.FeatureVersion1)
			d := r.setupQueue(0, 8, 0x30000, 1)
			r.write(regDeviceStatus, 1, 0xF)
			h, _ := d.Chain(queuetest.Buf{Len: 8, Write: true})
			d.Publish(h)
			r.kick(0)
			r.waitMSI(0x41)
			if used := d.TakeUsed(); len(used) != 1 || used[0].Len != 8 {
				t.Errorf("after the reset: used = %+v, want one entry of 8 bytes", used)
			}
		})
	}
}

// TestResetRegisters: a reset puts every register back (4.1.4.3.2).
func TestResetRegisters(t *testing.T) {
	r := newRig(t, rng.NewFromSource(counting()), nil)
	r.negotiate(virtio.FeatureVersion1)
	r.setupQueue(0, 8, 0x10000, 1)
	r.write(regDeviceStatus, 1, 0xF)
	r.write(regDeviceStatus, 1, 0)
	r.write(regQueueSelect, 2, 0)
	got := map[string]uint64{
		"status":        r.read(regDeviceStatus, 1),
		"queue_size":    r.read(regQueueSize, 2),
		"queue_enable":  r.read(regQueueEnable, 2),
		"queue_vector":  r.read(regQueueMSIXVector, 2),
		"config_vector": r.read(regConfigMSIXVector, 2),
		"queue_desc":    r.read(regQueueDesc, 8),
		"num_queues":    r.read(regNumQueues, 2),
	}
	want := map[string]uint64{"status": 0, "queue_size": rng.QueueSize, "queue_enable": 0, "queue_vector": NoVector, "config_vector": NoVector, "queue_desc": 0, "num_queues": 1}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("after reset %s = %#x, want %#x", k, got[k], w)
		}
	}
	// A queue that does not exist reads as size 0.
	r.write(regQueueSelect, 2, 5)
	if s := r.read(regQueueSize, 2); s != 0 {
		t.Errorf("queue_size of queue 5 = %d, want 0", s)
	}
	_ = binary.LittleEndian
}
