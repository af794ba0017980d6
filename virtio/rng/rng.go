// Package rng is virtio-rng, the entropy device (virtio 1.2, 5.4): one
// queue whose device-writable buffers the device fills from the host's
// getrandom(2).
package rng

import (
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
)

// QueueSize is the request queue's size.
const QueueSize = 64

// maxPerRequest bounds the bytes given for one chain: a guest asking for
// more gets this many (the used length says so, 5.4.6.1 allows it).
const maxPerRequest = 64 << 10

// Device is one virtio-rng device.
type Device struct {
	read    func(p []byte) (int, error) // the entropy source
	workers virtio.Workers
}

// New returns a device fed by getrandom(2).
func New() *Device { return &Device{read: getrandom} }

// NewFromSource returns a device fed by read, for tests.
func NewFromSource(read func(p []byte) (int, error)) *Device { return &Device{read: read} }

func getrandom(p []byte) (int, error) { return unix.Getrandom(p, 0) }

func (d *Device) Type() uint16 { return virtio.TypeEntropy }

func (d *Device) Features() uint64 { return queue.FeatureIndirectDesc | queue.FeatureEventIdx }

func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ReadConfig: virtio-rng has no configuration space (5.4.4).
func (d *Device) ReadConfig(off uint64, p []byte) {}

func (d *Device) WriteConfig(off uint64, p []byte) {}

// Activate starts the request queue's worker.
func (d *Device) Activate(a virtio.Activation) error {
	d.workers.Start()
	d.workers.Go(func(stop <-chan struct{}) { virtio.Serve(stop, a, 0, d.serve) })
	return nil
}

// Reset stops the worker.
func (d *Device) Reset() { d.workers.Stop() }

// serve fills the chain's writable buffers (5.4.6.2: the device MUST
// place one or more random bytes into the buffer).
func (d *Device) serve(c *queue.Chain) (uint32, error) {
	var n uint32
	for _, b := range c.Writable {
		if n+uint32(len(b)) > maxPerRequest {
			b = b[:maxPerRequest-n]
		}
		for len(b) > 0 {
			got, err := d.read(b)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				// The host's entropy failed: give what we have; the
				// driver asks again. Nothing the guest did wrong.
				return n, nil
			}
			if got == 0 {
				return n, nil // as a failure: the driver asks again
			}
			n += uint32(got)
			b = b[got:]
		}
		if n >= maxPerRequest {
			break
		}
	}
	return n, nil
}
