package usernet

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	udptransport "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// leaseTime is what the guest is told its address is good for; it is
// the only address on the link, so the guest just keeps renewing it.
const leaseTime = time.Hour

// The DHCP ports (RFC 2131 §4.1).
const (
	serverPort = 67
	clientPort = 68
)

// leaser is the link's DHCP server. The link has one guest, so there is
// one lease: whoever asks is offered GuestIP, with the gateway as router
// and DNS server.
type leaser struct {
	self, guest, gateway net.IP // self is the server identifier: the gateway
	mask                 net.IPMask
	mtu                  uint16
}

// serveDHCP starts the DHCP server on the stack's NIC: a UDP socket on
// port 67 of every address, allowed to send to 255.255.255.255 (the
// guest has no address until it is acked). Its Close stops it.
func serveDHCP(s *stack.Stack, nic tcpip.NICID, l *leaser) (*server4.Server, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(udptransport.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Err: tcpipError{terr}}
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nic, Port: serverPort}); terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "bind", Net: "udp", Err: tcpipError{terr}}
	}
	conn := gonet.NewUDPConn(&wq, ep)
	srv, err := server4.NewServer("", nil, l.handle, server4.WithConn(conn), server4.WithLogger(server4.EmptyLogger{}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	go func() { _ = srv.Serve() }() // returns when the socket closes
	return srv, nil
}

// tcpipError makes a netstack error a Go error.
type tcpipError struct{ e tcpip.Error }

func (t tcpipError) Error() string { return t.e.String() }

// handle answers one client message (RFC 2131 §4.3). conn is the
// server's socket; peer, as server4 works it out, is ignored: where a
// reply goes is decided by the message itself (replyTo).
func (l *leaser) handle(conn net.PacketConn, _ net.Addr, req *dhcpv4.DHCPv4) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	var reply *dhcpv4.DHCPv4
	var err error
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		reply, err = l.lease(req, dhcpv4.MessageTypeOffer)
	case dhcpv4.MessageTypeRequest:
		// A REQUEST naming another server is that server's business
		// (§4.3.2); one in INIT-REBOOT, RENEWING or REBINDING state
		// names none.
		if id := req.ServerIdentifier(); id != nil && !id.Equal(l.self) {
			return
		}
		want := req.RequestedIPAddress()
		if want == nil || want.IsUnspecified() {
			want = req.ClientIPAddr
		}
		if want != nil && !want.IsUnspecified() && !want.Equal(l.guest) {
			reply, err = dhcpv4.NewReplyFromRequest(req,
				dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.self)),
				dhcpv4.WithBroadcast(true))
			break
		}
		reply, err = l.lease(req, dhcpv4.MessageTypeAck)
	case dhcpv4.MessageTypeInform:
		// The client has its address; it wants the rest (§3.4): no
		// lease, no yiaddr.
		reply, err = dhcpv4.NewReplyFromRequest(req, append(l.parameters(), dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))...)
	default:
		return // RELEASE and DECLINE need no answer: the one address stays the guest's
	}
	if err != nil {
		return
	}
	_, _ = conn.WriteTo(reply.ToBytes(), replyTo(req, reply))
}

// lease is an OFFER or ACK of GuestIP with the link's parameters.
func (l *leaser) lease(req *dhcpv4.DHCPv4, t dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	mods := append(l.parameters(),
		dhcpv4.WithMessageType(t),
		dhcpv4.WithYourIP(l.guest),
		dhcpv4.WithLeaseTime(uint32(leaseTime/time.Second)),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(leaseTime/2)),
		dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(leaseTime*7/8)),
	)
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// parameters are the options every positive answer carries (RFC 2132).
func (l *leaser) parameters() []dhcpv4.Modifier {
	mtu := make([]byte, 2)
	binary.BigEndian.PutUint16(mtu, l.mtu)
	return []dhcpv4.Modifier{
		dhcpv4.WithServerIP(l.self),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(l.self)),
		dhcpv4.WithNetmask(l.mask),
		dhcpv4.WithRouter(l.gateway),
		dhcpv4.WithDNS(l.gateway),
		dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, mtu),
	}
}

// replyTo is where a reply goes (RFC 2131 §4.1, no relays here): to a
// client that has an address (ciaddr), there; a NAK, and anything for a
// client still without one, to the limited broadcast address. (Unicast
// to yiaddr would need an ARP entry the client cannot answer for yet;
// every client accepts the broadcast.)
func replyTo(req, reply *dhcpv4.DHCPv4) net.Addr {
	if reply.MessageType() != dhcpv4.MessageTypeNak && req.ClientIPAddr != nil && !req.ClientIPAddr.IsUnspecified() {
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: clientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: clientPort}
}
