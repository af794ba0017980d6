package virtio

import (
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio/queue"
)

// Device types (virtio 1.2, 5 "Device Types").
const (
	TypeNet     = 1
	TypeBlock   = 2
	TypeEntropy = 4
)

// Feature bits every transport knows (virtio 1.2, 6 "Reserved Feature
// Bits"); the ring features are queue.FeatureIndirectDesc and
// queue.FeatureEventIdx.
const (
	FeatureVersion1 = 1 << 32 // VIRTIO_F_VERSION_1: a modern device, the only kind govmm offers
)

// Device status bits (virtio 1.2, 2.1).
const (
	StatusAcknowledge = 1
	StatusDriver      = 2
	StatusDriverOK    = 4
	StatusFeaturesOK  = 8
	StatusNeedsReset  = 0x40
	StatusFailed      = 0x80
)

// Device is one virtio device as a transport drives it: what it offers,
// its configuration space, and its queues once the driver is ready.
type Device interface {
	// Type is the virtio device ID.
	Type() uint16
	// Features are the feature bits offered, the device's own and the
	// ring features it handles; the transport adds FeatureVersion1.
	Features() uint64
	// QueueSizes are the largest size of each queue, powers of two.
	QueueSizes() []uint16
	// ReadConfig and WriteConfig access the device-specific
	// configuration space at off.
	ReadConfig(off uint64, p []byte)
	WriteConfig(off uint64, p []byte)
	// Activate starts the device's work when the driver sets DRIVER_OK.
	Activate(a Activation) error
	// Reset stops the device's work and waits until it has stopped: no
	// buffer is used and no interrupt sent after it returns (virtio 1.2,
	// 2.4.1). The device may be activated again afterwards.
	Reset()
}

// Activation is what a device works with once the driver is ready.
type Activation struct {
	Mem *memory.Memory
	// Features are the negotiated bits.
	Features uint64
	// Queues are the device's queues, nil where the driver did not
	// enable one.
	Queues []*queue.Queue
	// Kicks gets a value after the driver notifies each queue; kicks that
	// come while one is waiting are merged.
	Kicks []<-chan struct{}
	// Interrupt sends queue i's used buffer notification; the device
	// calls it when Queue.NeedInterrupt says so. Safe from any goroutine.
	Interrupt func(i int)
	// ConfigChanged sends a configuration change notification.
	ConfigChanged func()
	// Broken reports that the driver broke the rules (an error wrapping
	// queue.ErrDriver, or a malformed request the device cannot answer):
	// the transport sets DEVICE_NEEDS_RESET and logs one line. The device
	// stops using its queues until Reset.
	Broken func(err error)
}
