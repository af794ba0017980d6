package usernet

import (
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// queueLen is how many frames the netstack may have sent that the guest
// has not read yet. Past it, frames are dropped as a full NIC ring
// would drop them (TCP sends again; the rest is best effort).
const queueLen = 512

// wire is the Ethernet link between the netstack's one NIC and the
// virtio-net device: a stack.LinkEndpoint whose far side is the guest.
// The stack's frames wait in a queue for ReadPacket; the guest's frames
// (WritePacket) go up the stack in the caller's goroutine.
type wire struct {
	mac tcpip.LinkAddress // the gateway's, the source of every frame sent

	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher // nil until Attach, and after Close
	mtu        uint32

	toGuest chan []byte
	closed  chan struct{}
	once    sync.Once
}

var _ stack.LinkEndpoint = (*wire)(nil)

func newWire(mac tcpip.LinkAddress, mtu uint32) *wire {
	return &wire{mac: mac, mtu: mtu, toGuest: make(chan []byte, queueLen), closed: make(chan struct{})}
}

// ---- the guest's side ----

// next blocks for the next frame for the guest; it fails once the wire
// is cut.
func (w *wire) next() ([]byte, error) {
	select {
	case f := <-w.toGuest:
		return f, nil
	case <-w.closed:
		return nil, net.ErrClosed
	}
}

// fromGuest hands one whole frame (Ethernet header first) to the stack.
// Frames too short to carry a header are dropped.
func (w *wire) fromGuest(frame []byte) error {
	select {
	case <-w.closed:
		return net.ErrClosed
	default:
	}
	if len(frame) < header.EthernetMinimumSize {
		return nil
	}
	w.mu.RLock()
	d := w.dispatcher
	w.mu.RUnlock()
	if d == nil {
		return nil // no stack yet: the frame is lost, as on an unplugged cable
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	defer pkt.DecRef()
	if !w.ParseHeader(pkt) {
		return nil
	}
	d.DeliverNetworkPacket(header.Ethernet(frame).Type(), pkt)
	return nil
}

// cut ends the link: next fails from now on and the stack's frames are
// dropped.
func (w *wire) cut() { w.once.Do(func() { close(w.closed) }) }

// ---- the stack's side: stack.LinkEndpoint ----

// MTU is the largest IP packet the link carries.
func (w *wire) MTU() uint32 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.mtu
}

// SetMTU changes it.
func (w *wire) SetMTU(mtu uint32) {
	w.mu.Lock()
	w.mtu = mtu
	w.mu.Unlock()
}

// MaxHeaderLength is the room the Ethernet header needs.
func (w *wire) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress is the gateway's MAC.
func (w *wire) LinkAddress() tcpip.LinkAddress { return w.mac }

// SetLinkAddress: the gateway's MAC is fixed.
func (w *wire) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities: addresses are resolved (ARP); no offloads, so the stack
// computes every checksum and segments everything itself.
func (w *wire) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}

// Attach connects the stack's NIC (nil disconnects it).
func (w *wire) Attach(d stack.NetworkDispatcher) {
	w.mu.Lock()
	w.dispatcher = d
	w.mu.Unlock()
}

// IsAttached says whether a NIC is connected.
func (w *wire) IsAttached() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.dispatcher != nil
}

// Wait: the wire has no goroutines of its own.
func (w *wire) Wait() {}

// ARPHardwareType is Ethernet's.
func (w *wire) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader prepends the Ethernet header: to the next hop's MAC (as
// resolved by the stack), from the gateway's, with the packet's
// protocol as EtherType.
func (w *wire) AddHeader(pkt *stack.PacketBuffer) {
	src := pkt.EgressRoute.LocalLinkAddress
	if src == "" {
		src = w.mac
	}
	header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize)).Encode(&header.EthernetFields{
		SrcAddr: src,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader takes the Ethernet header off the front of an incoming
// packet; false if there is not one.
func (w *wire) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}

// Close is the stack's: it removed the NIC.
func (w *wire) Close() { w.cut() }

// SetOnCloseAction: nothing to destroy when the NIC goes.
func (w *wire) SetOnCloseAction(func()) {}

// WritePackets queues the stack's frames (headers already added) for
// the guest, dropping those a full queue or a cut wire cannot take.
func (w *wire) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		var frame []byte
		for _, s := range pkt.AsSlices() {
			frame = append(frame, s...)
		}
		select {
		case <-w.closed:
			return n, &tcpip.ErrClosedForSend{}
		default:
		}
		select {
		case w.toGuest <- frame:
		default: // the guest is not reading: drop, as a full ring would
		}
		n++
	}
	return n, nil
}
