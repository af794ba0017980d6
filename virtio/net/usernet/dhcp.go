package usernet

// The DHCP server: gvisor-tap-vsock's services/dhcp handler, here because
// that package takes a pkg/tap IP pool (and so imports pkg/tap; see
// link.go).

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/sirupsen/logrus"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	gudp "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// leases is the IP pool: reserved addresses first (the gateway's, the
// guest's), then the subnet's first free host address for any other MAC.
type leases struct {
	subnet *net.IPNet
	mu     sync.Mutex
	byIP   map[string]string // IP to MAC
}

func (l *leases) reserve(ip net.IP, mac string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byIP[ip.String()] = mac
}

func (l *leases) getOrAssign(mac string) (net.IP, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, m := range l.byIP {
		if m == mac {
			return net.ParseIP(ip), nil
		}
	}
	base := l.subnet.IP.To4()
	ones, bits := l.subnet.Mask.Size()
	for i := uint32(1); i < 1<<(bits-ones); i++ {
		ip := make(net.IP, 4)
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
		v += i
		ip[0], ip[1], ip[2], ip[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		if _, taken := l.byIP[ip.String()]; !taken {
			l.byIP[ip.String()] = mac
			return ip, nil
		}
	}
	return nil, errors.New("cannot find available IP")
}

// dhcpHandler answers DISCOVER with an OFFER and REQUEST with an ACK:
// the pool's address, an hour's lease, the gateway as router and DNS
// server, the MTU.
func dhcpHandler(l *leases, gatewayIP net.IP) server4.Handler {
	return func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		reply, err := dhcpv4.NewReplyFromRequest(m)
		if err != nil {
			logrus.Errorf("dhcp: cannot build reply from request: %v", err)
			return
		}
		ip, err := l.getOrAssign(m.ClientHWAddr.String())
		if err != nil {
			logrus.Errorf("dhcp: cannot assign ip: %v", err)
			return
		}
		reply.YourIPAddr = ip
		reply.UpdateOption(dhcpv4.OptServerIdentifier(gatewayIP))
		reply.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionSubnetMask, Value: dhcpv4.IP(l.subnet.Mask)})
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionRouter, Value: dhcpv4.IP(gatewayIP)})
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionDomainNameServer, Value: dhcpv4.IPs([]net.IP{gatewayIP})})
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionInterfaceMTU, Value: dhcpv4.Uint16(mtu)})
		reply.UpdateOption(dhcpv4.Option{Code: dhcpv4.OptionDNSDomainSearchList, Value: &rfc1035label.Labels{}})
		switch mt := m.MessageType(); mt {
		case dhcpv4.MessageTypeDiscover:
			reply.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer))
		case dhcpv4.MessageTypeRequest:
			reply.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeAck))
		case dhcpv4.MessageTypeRelease:
			logrus.Debugf("dhcp: unhandled message type: %v", mt)
			return
		default:
			logrus.Errorf("dhcp: unhandled message type: %v", mt)
			return
		}
		if _, err := conn.WriteTo(reply.ToBytes(), peer); err != nil {
			logrus.Errorf("dhcp: cannot reply to client: %v", err)
		}
	}
}

// serveDHCP listens on the NIC's port 67 (any address, broadcasts
// allowed) and serves until the stack closes the endpoint.
func serveDHCP(s *stack.Stack, l *leases, gatewayIP net.IP) error {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(gudp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return errors.New(terr.String())
	}
	ep.SocketOptions().SetBroadcast(true)
	if terr := ep.Bind(tcpip.FullAddress{NIC: nicID, Port: 67}); terr != nil {
		ep.Close()
		return errors.New(terr.String())
	}
	srv, err := server4.NewServer("", nil, dhcpHandler(l, gatewayIP), server4.WithConn(gonet.NewUDPConn(&wq, ep)))
	if err != nil {
		return err
	}
	go func() { logrus.Error(srv.Serve()) }()
	return nil
}
