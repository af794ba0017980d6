package usernet

// The link between the guest and the netstack: what gvisor-tap-vsock's
// pkg/tap (its LinkEndpoint and Switch) does for one guest on a BESS
// connection, without that package. pkg/tap imports gopacket (for a debug
// dump govmm never turns on) whose package init alone took ~3.5 ms of
// every govmm start, networked or not: Go runs every linked package's init.

import (
	"context"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gateway is the netstack's NIC: a stack.LinkEndpoint whose frames go to
// the guest's side of the link.
type gateway struct {
	mtu uint32
	mac tcpip.LinkAddress
	// arpFor are the addresses the gateway may answer ARP for: itself and
	// the virtual IPs. The stack is promiscuous (it plays every address
	// beyond the gateway, for NAT), so it would also claim the guest's
	// own address; pkg/tap drops those replies, and so do we.
	arpFor map[tcpip.Address]bool

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	sw         *guestSwitch
}

func (e *gateway) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }
func (e *gateway) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	e.mu.Unlock()
}
func (e *gateway) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}
func (e *gateway) AddHeader(*stack.PacketBuffer)        {}
func (e *gateway) ParseHeader(*stack.PacketBuffer) bool { return true }
func (e *gateway) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}
func (e *gateway) LinkAddress() tcpip.LinkAddress     { return e.mac }
func (e *gateway) SetLinkAddress(a tcpip.LinkAddress) { e.mac = a }
func (e *gateway) MaxHeaderLength() uint16            { return header.EthernetMinimumSize }
func (e *gateway) MTU() uint32                        { return e.mtu }
func (e *gateway) SetMTU(mtu uint32)                  { e.mtu = mtu }
func (e *gateway) Wait()                              {}
func (e *gateway) Close()                             {}
func (e *gateway) SetOnCloseAction(func())            {}
func (e *gateway) WriteRawPacket(*stack.PacketBuffer) tcpip.Error {
	return &tcpip.ErrNotSupported{}
}

// WritePackets sends the stack's packets to the guest as Ethernet frames.
func (e *gateway) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, p := range pkts.AsSlice() {
		e.writePacket(p)
		n++
	}
	return n, nil
}

func (e *gateway) writePacket(pkt *stack.PacketBuffer) {
	r := pkt.EgressRoute
	src := e.mac
	if r.LocalLinkAddress != "" {
		src = r.LocalLinkAddress // keep the route's own source
	}
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{Type: pkt.NetworkProtocolNumber, SrcAddr: src, DstAddr: r.RemoteLinkAddress})
	if h := header.ARP(pkt.NetworkHeader().Slice()); h.IsValid() && h.Op() == header.ARPReply &&
		!e.arpFor[tcpip.AddrFromSlice(h.ProtocolAddressSender())] {
		return // a spoofed answer about an address that is not ours
	}
	e.sw.toGuest(pkt.ToView().AsSlice())
}

// deliver hands a frame from the guest, less its Ethernet header, to the
// stack.
func (e *gateway) deliver(frame []byte) {
	e.mu.Lock()
	d := e.dispatcher
	e.mu.Unlock()
	if d == nil {
		return
	}
	data := buffer.MakeWithData(frame)
	data.TrimFront(header.EthernetMinimumSize)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: data})
	d.DeliverNetworkPacket(header.Ethernet(frame).Type(), pkt)
	pkt.DecRef()
}

// guestSwitch is pkg/tap's Switch with one port, the guest's end of a
// connection where one Write is one frame (BESS): it learns the guest's
// source MACs, sends the guest the stack's broadcasts and the frames for
// MACs it learned, and gives the stack the guest's frames for the
// gateway's MAC and broadcasts.
type guestSwitch struct {
	gw   *gateway
	conn net.Conn

	writeMu sync.Mutex // one frame at a time on conn
	camMu   sync.Mutex // held apart from writeMu: a blocked write must not stop the reader
	cam     map[tcpip.LinkAddress]bool
}

// toGuest writes one frame to the guest if it is for the guest; an error
// ends the link, as pkg/tap disconnects a port that fails.
func (s *guestSwitch) toGuest(frame []byte) {
	if len(frame) < header.EthernetMinimumSize {
		return
	}
	dst := header.Ethernet(frame).DestinationAddress()
	s.camMu.Lock()
	known := s.cam[dst]
	s.camMu.Unlock()
	if dst != header.EthernetBroadcastAddress && !known {
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, err := s.conn.Write(frame); err != nil {
		_ = s.conn.Close()
	}
}

// fromGuest is one frame the guest sent.
func (s *guestSwitch) fromGuest(frame []byte) {
	if len(frame) < header.EthernetMinimumSize {
		return
	}
	eth := header.Ethernet(frame)
	s.camMu.Lock()
	s.cam[eth.SourceAddress()] = true
	s.camMu.Unlock()
	dst := eth.DestinationAddress()
	if dst != s.gw.mac && dst != header.EthernetBroadcastAddress {
		// For another port: only the guest's own MACs have one.
		s.toGuest(append([]byte(nil), frame...))
	}
	if dst == s.gw.mac || dst == header.EthernetBroadcastAddress {
		s.gw.deliver(frame)
	}
}

// run reads the guest's frames until the link or ctx ends.
func (s *guestSwitch) run(ctx context.Context) {
	buf := make([]byte, 128<<10)
	for ctx.Err() == nil {
		n, err := s.conn.Read(buf)
		if err != nil {
			break
		}
		s.fromGuest(buf[:n])
	}
	_ = s.conn.Close()
}
