// Package net is virtio-net (virtio 1.2, 5.1): an Ethernet card whose
// frames go to a Backend, a TAP device (tap.go) or user-mode networking
// (package usernet). Receive buffers may be merged (VIRTIO_NET_F_MRG_RXBUF)
// so that a large frame spans several chains; with a TAP that takes
// virtio_net_hdr (IFF_VNET_HDR) the checksum and segmentation offloads
// pass through to the host's kernel, which implements them.
package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
)

// Feature bits (5.1.3).
const (
	FeatureCsum      = 1 << 0  // VIRTIO_NET_F_CSUM: the device checksums partial packets (host)
	FeatureGuestCsum = 1 << 1  // VIRTIO_NET_F_GUEST_CSUM: the driver takes partial checksums
	FeatureMAC       = 1 << 5  // VIRTIO_NET_F_MAC
	FeatureGuestTSO4 = 1 << 7  // VIRTIO_NET_F_GUEST_TSO4
	FeatureGuestTSO6 = 1 << 8  // VIRTIO_NET_F_GUEST_TSO6
	FeatureHostTSO4  = 1 << 11 // VIRTIO_NET_F_HOST_TSO4
	FeatureHostTSO6  = 1 << 12 // VIRTIO_NET_F_HOST_TSO6
	FeatureMrgRxbuf  = 1 << 15 // VIRTIO_NET_F_MRG_RXBUF
	FeatureStatus    = 1 << 16 // VIRTIO_NET_F_STATUS

	// OffloadFeatures are offered only over a backend that implements
	// them (a TAP with IFF_VNET_HDR).
	OffloadFeatures = FeatureCsum | FeatureGuestCsum | FeatureGuestTSO4 | FeatureGuestTSO6 | FeatureHostTSO4 | FeatureHostTSO6
)

// HeaderSize is struct virtio_net_hdr with num_buffers, the header every
// frame carries with VIRTIO_F_VERSION_1 (5.1.6).
const HeaderSize = 12

const (
	numBuffersOff = 10 // le16 num_buffers in the header
	statusLinkUp  = 1  // VIRTIO_NET_S_LINK_UP
	// QueueSize is each queue's size.
	QueueSize = 256
	rxQueue   = 0
	txQueue   = 1
	// maxPacket is the largest frame with its header: a 64 KiB TSO
	// segment plus Ethernet and VLAN headers.
	maxPacket = HeaderSize + 65536 + 18
	// minMergedBuffer: a driver that did not negotiate MRG_RXBUF must
	// give buffers that hold a whole frame (5.1.6.3.1).
	configSize = 8 // mac[6], le16 status
)

// Backend carries the card's frames.
type Backend interface {
	// VnetHdr says frames to and from the backend carry the 12-byte
	// virtio_net_hdr, whose offloads the backend honours.
	VnetHdr() bool
	// ReadPacket blocks for the next frame (with its header if VnetHdr)
	// and reads it into p; an error ends reception.
	ReadPacket(p []byte) (int, error)
	// WritePacket sends one frame gathered from iov (with its header if
	// VnetHdr). A frame it cannot send is dropped, as by a real card.
	WritePacket(iov [][]byte) error
	// SetOffloads tells the backend which offloads the guest accepts in
	// received frames (features are the negotiated bits).
	SetOffloads(features uint64) error
	Close() error
}

// Device is one virtio-net card.
type Device struct {
	be       Backend
	mac      net.HardwareAddr
	features uint64
	config   [configSize]byte
	workers  virtio.Workers

	// The backend is read by one goroutine for the card's life (started
	// with the first receive loop, ended by Close), which hands frames
	// to whichever receive loop runs: a reset or a pause loses none that
	// it read.
	readerOnce sync.Once
	frames     chan []byte // read frames, with their header
	free       chan []byte // buffers for the reader
	done       chan struct{}
	closeOnce  sync.Once
	// held is a frame the last receive loop could not place before it
	// stopped; the next one places it first. Only receive loops, one at
	// a time, touch it.
	held []byte

	// Counters.
	TxFrames, TxBytes, TxDropped atomic.Uint64
	RxFrames, RxBytes, RxDropped atomic.Uint64
}

// New returns a card with address mac on backend be.
func New(be Backend, mac net.HardwareAddr) (*Device, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("virtio-net: MAC address %v is not 6 bytes", mac)
	}
	d := &Device{be: be, mac: mac, frames: make(chan []byte), free: make(chan []byte, 2), done: make(chan struct{})}
	d.free <- make([]byte, maxPacket)
	d.free <- make([]byte, maxPacket)
	d.features = FeatureMAC | FeatureStatus | FeatureMrgRxbuf | queue.FeatureIndirectDesc | queue.FeatureEventIdx
	if be.VnetHdr() {
		d.features |= OffloadFeatures
	}
	copy(d.config[:], mac)
	binary.LittleEndian.PutUint16(d.config[6:], statusLinkUp)
	return d, nil
}

func (d *Device) Type() uint16 { return virtio.TypeNet }

func (d *Device) Features() uint64 { return d.features }

// QueueSizes: one receive and one transmit queue; no control queue.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ReadConfig reads struct virtio_net_config (5.1.4): mac, status.
func (d *Device) ReadConfig(off uint64, p []byte) {
	for i := range p {
		p[i] = 0
		if o := off + uint64(i); o < configSize {
			p[i] = d.config[o]
		}
	}
}

// WriteConfig: the MAC is read-only with VERSION_1 (5.1.4.2).
func (d *Device) WriteConfig(off uint64, p []byte) {}

// MAC is the card's address, as its configuration space shows it.
func (d *Device) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), d.mac...) }

// SetMAC changes the address the configuration space shows (5.1.4): for
// a restore, before the guest runs (the configuration space is read by
// the vCPUs without a lock). A driver reads it when it probes the
// device; one already running keeps the address it read.
func (d *Device) SetMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("virtio-net: MAC address %v is not 6 bytes", mac)
	}
	d.mac = append(net.HardwareAddr(nil), mac...)
	copy(d.config[:], mac)
	return nil
}

// Backend is the card's backend.
func (d *Device) Backend() Backend { return d.be }

// Activate starts the transmit worker and the receive loop.
func (d *Device) Activate(a virtio.Activation) error {
	if err := d.be.SetOffloads(a.Features); err != nil {
		return fmt.Errorf("virtio-net: the backend refused the offloads: %w", err)
	}
	d.workers.Start()
	hdrLen := uint64(HeaderSize)
	d.workers.Go(func(stop <-chan struct{}) {
		var iov [][]byte
		virtio.Serve(stop, a, txQueue, func(c *queue.Chain) (uint32, error) { return d.transmit(c, hdrLen, &iov) })
	})
	d.workers.Go(func(stop <-chan struct{}) { d.receive(stop, a) })
	return nil
}

// Reset stops both; a frame being received is kept for the next
// activation (the driver may get it late, as after a slow link).
func (d *Device) Reset() { d.workers.Stop() }

// Close ends the goroutine that reads the backend; call it before the
// backend's Close (which ends a read under way), after Reset.
func (d *Device) Close() { d.closeOnce.Do(func() { close(d.done) }) }

// transmit sends one chain: the header, then the frame (5.1.6.2).
func (d *Device) transmit(c *queue.Chain, hdrLen uint64, iov *[][]byte) (uint32, error) {
	total := c.ReadableLen()
	if total < hdrLen {
		d.TxDropped.Add(1)
		return 0, nil
	}
	skip := hdrLen
	if d.be.VnetHdr() {
		skip = 0
	}
	*iov = queue.Slices((*iov)[:0], c.Readable, skip, total-skip)
	if err := d.be.WritePacket(*iov); err != nil {
		d.TxDropped.Add(1)
		return 0, nil
	}
	d.TxFrames.Add(1)
	d.TxBytes.Add(total - hdrLen)
	return 0, nil
}

// errStopped ends reception when the device is reset.
var errStopped = errors.New("virtio-net: stopped")

// receive takes frames the reader read and places each in receive
// chains (5.1.6.4): with MRG_RXBUF in as many chains as it takes, the
// first header's num_buffers saying how many. Stopped while waiting for
// the driver's buffers, it keeps the frame for the next activation.
func (d *Device) receive(stop <-chan struct{}, a virtio.Activation) {
	q := a.Queues[rxQueue]
	if q == nil {
		return
	}
	d.readerOnce.Do(func() { go d.readLoop() })
	merge := a.Features&FeatureMrgRxbuf != 0
	chains := make([]queue.Chain, 1, 8)
	for {
		pkt := d.held
		d.held = nil
		if pkt == nil {
			select {
			case <-stop:
				return
			case pkt = <-d.frames:
			}
		}
		err := d.deliver(stop, a, q, pkt, merge, &chains)
		if errors.Is(err, errStopped) {
			d.held = pkt
			return
		}
		d.free <- pkt[:cap(pkt)]
		if err != nil {
			a.Broken(err)
			return
		}
	}
}

// readLoop reads frames into the free buffers and hands them on, until
// Close or the backend's end.
func (d *Device) readLoop() {
	hdr := d.be.VnetHdr()
	for {
		var buf []byte
		select {
		case <-d.done:
			return
		case buf = <-d.free:
		}
		var n int
		var err error
		if hdr {
			n, err = d.be.ReadPacket(buf)
		} else {
			clear(buf[:HeaderSize])
			n, err = d.be.ReadPacket(buf[HeaderSize:])
			n += HeaderSize
		}
		if err != nil {
			return // the backend closed
		}
		select {
		case <-d.done:
			return
		case d.frames <- buf[:n]:
		}
	}
}

// deliver places one packet (header and frame) in receive chains.
func (d *Device) deliver(stop <-chan struct{}, a virtio.Activation, q *queue.Queue, pkt []byte, merge bool, chains *[]queue.Chain) error {
	used := 0
	written := []uint32{}
	for off := 0; off < len(pkt); {
		if used == len(*chains) {
			*chains = append(*chains, queue.Chain{})
		}
		c := &(*chains)[used]
		for {
			ok, err := q.Pop(c)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			// No buffers: wait for the driver to add some.
			more, err := q.EnableNotify()
			if err != nil {
				return err
			}
			if more {
				continue
			}
			select {
			case <-stop:
				// The chains taken for this frame go back unused
				// (Queue.Unpop); receive keeps the frame for the next
				// activation.
				q.Unpop(uint16(used))
				return errStopped
			case <-a.Kicks[rxQueue]:
			}
		}
		wl := c.WritableLen()
		if wl < HeaderSize && used == 0 {
			// Nowhere to put even the header: give the chain back empty.
			if err := q.Return(c, 0); err != nil {
				return err
			}
			continue
		}
		n := queue.CopyTo(c.Writable, 0, pkt[off:])
		off += n
		written = append(written, uint32(n))
		used++
		if !merge && off < len(pkt) {
			d.RxDropped.Add(1) // the frame does not fit the driver's buffer
			written[len(written)-1] = 0
			break
		}
	}
	if merge || used == 1 {
		var nb [2]byte
		binary.LittleEndian.PutUint16(nb[:], uint16(used))
		queue.CopyTo((*chains)[0].Writable, numBuffersOff, nb[:])
	}
	for i := 0; i < used; i++ {
		if err := q.Return(&(*chains)[i], written[i]); err != nil {
			return err
		}
	}
	if written[0] > 0 {
		d.RxFrames.Add(1)
		d.RxBytes.Add(uint64(len(pkt) - HeaderSize))
	}
	need, err := q.NeedInterrupt()
	if err != nil {
		return err
	}
	if need {
		a.Interrupt(rxQueue)
	}
	return nil
}
