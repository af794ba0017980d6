// Package usernet is rootless user-mode networking for virtio-net: the
// guest's frames go to a gVisor netstack inside govmm, wired as
// gvisor-tap-vsock's virtual network wires it and running its services
// (link.go says why not through its virtualnetwork package), that plays
// gateway (192.168.127.1), answers DHCP
// (the guest gets 192.168.127.2) and DNS, and makes the guest's TCP and
// UDP connections with the host's own sockets (NAT), as QEMU's -netdev
// user does. 192.168.127.254 is the host's loopback. Port forwards
// (hostfwd) listen on the host and connect into the guest. No privileges
// are needed: no TAP, no bridge, no capabilities.
package usernet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containers/gvisor-tap-vsock/pkg/services/dns"
	"github.com/containers/gvisor-tap-vsock/pkg/services/forwarder"
	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/sirupsen/logrus"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	garp "gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	gudp "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The virtual network's addresses (those of gvisor-tap-vsock's gvproxy).
const (
	Subnet     = "192.168.127.0/24"
	GatewayIP  = "192.168.127.1"
	GuestIP    = "192.168.127.2"
	HostIP     = "192.168.127.254" // the host's 127.0.0.1, through NAT
	gatewayMAC = "5a:94:ef:e4:0c:dd"
	mtu        = 1500
)

// Forward is a hostfwd rule: connections to Host (host:port on the host)
// go to Guest (addr:port in the guest; an empty addr is GuestIP).
type Forward struct {
	UDP         bool
	Host, Guest string
}

// Config is one network.
type Config struct {
	GuestMAC net.HardwareAddr
	Forwards []Forward
	// Log gets the netstack's warnings; nil discards them.
	Log io.Writer
}

// Network is a virtual network with one guest attached, a virtio-net
// Backend (frames without virtio_net_hdr).
type Network struct {
	guest     net.Conn // govmm's end of the link
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once

	sent, received atomic.Uint64
}

var logOnce sync.Once

// New starts the network: the netstack, its DHCP and DNS servers and the
// forwards' listeners.
func New(c Config) (*Network, error) {
	logOnce.Do(func() {
		// gvisor-tap-vsock logs through logrus's standard logger.
		logrus.SetLevel(logrus.WarnLevel)
		if c.Log != nil {
			logrus.SetOutput(c.Log)
		} else {
			logrus.SetOutput(io.Discard)
		}
	})
	gwIP := net.ParseIP(GatewayIP).To4()
	gwMAC, err := net.ParseMAC(gatewayMAC)
	if err != nil {
		return nil, err
	}
	_, subnet, err := net.ParseCIDR(Subnet)
	if err != nil {
		return nil, err
	}
	pool := &leases{subnet: subnet, byIP: map[string]string{}}
	pool.reserve(gwIP, gatewayMAC)
	pool.reserve(net.ParseIP(GuestIP), c.GuestMAC.String())

	ours, theirs := net.Pipe() // one Write is one frame, as BESS wants
	gw := &gateway{mtu: mtu, mac: tcpip.LinkAddress(gwMAC), arpFor: map[tcpip.Address]bool{
		tcpip.AddrFrom4Slice(gwIP):                      true,
		tcpip.AddrFrom4Slice(net.ParseIP(HostIP).To4()): true, // a virtual IP
	}}
	gw.sw = &guestSwitch{gw: gw, conn: theirs, cam: map[tcpip.LinkAddress]bool{}}

	s, err := newStack(gw, gwIP, subnet)
	if err == nil {
		err = addServices(s, c, pool, gwIP)
	}
	if err != nil {
		_ = ours.Close()
		_ = theirs.Close()
		return nil, fmt.Errorf("user-mode network: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{guest: ours, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		gw.sw.run(ctx) // ends when the link closes
	}()
	return n, nil
}

// nicID is the stack's one NIC, the gateway.
const nicID = 1

// newStack is the netstack as gvisor-tap-vsock's virtualnetwork builds it:
// IPv4, ARP, TCP, UDP and ICMP on one NIC that holds the gateway's
// address, spoofing and promiscuous (it answers for every address beyond
// the gateway: NAT), routing the subnet to the NIC.
func newStack(gw *gateway, gwIP net.IP, subnet *net.IPNet) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, garp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, gudp.NewProtocol, icmp.NewProtocol4},
	})
	if err := s.CreateNIC(nicID, gw); err != nil {
		return nil, errors.New(err.String())
	}
	if err := s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4Slice(gwIP).WithPrefix(),
	}, stack.AddressProperties{}); err != nil {
		return nil, errors.New(err.String())
	}
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	sn, err := tcpip.NewSubnet(tcpip.AddrFromSlice(subnet.IP.To4()), tcpip.MaskFromBytes(subnet.Mask))
	if err != nil {
		return nil, err
	}
	s.SetRouteTable([]tcpip.Route{{Destination: sn, NIC: nicID}})
	return s, nil
}

// addServices starts what the gateway serves: NAT for TCP and UDP
// (HostIP is the host's 127.0.0.1), DNS and DHCP on the gateway, and the
// forwards' listeners on the host.
func addServices(s *stack.Stack, c Config, pool *leases, gwIP net.IP) error {
	var natLock sync.Mutex
	nat := map[tcpip.Address]tcpip.Address{
		tcpip.AddrFrom4Slice(net.ParseIP(HostIP).To4()): tcpip.AddrFrom4Slice(net.IPv4(127, 0, 0, 1).To4()),
	}
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, forwarder.TCP(s, nat, &natLock, false).HandlePacket)
	s.SetTransportProtocolHandler(gudp.ProtocolNumber, forwarder.UDP(s, nat, &natLock, false).HandlePacket)

	at := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4Slice(gwIP), Port: 53}
	udpConn, err := gonet.DialUDP(s, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	tcpLn, err := gonet.ListenTCP(s, at, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	zones := []types.Zone{{
		Name:    "govmm.internal.",
		Records: []types.Record{{Name: "gateway", IP: net.ParseIP(GatewayIP)}, {Name: "host", IP: net.ParseIP(HostIP)}},
	}}
	srv, err := dns.New(udpConn, tcpLn, zones)
	if err != nil {
		return err
	}
	go func() {
		if err := srv.Serve(); err != nil {
			logrus.Error(err)
		}
	}()
	go func() {
		if err := srv.ServeTCP(); err != nil {
			logrus.Error(err)
		}
	}()

	if err := serveDHCP(s, pool, gwIP); err != nil {
		return err
	}

	fw := forwarder.NewPortsForwarder(s)
	for _, f := range c.Forwards {
		g := f.Guest
		if strings.HasPrefix(g, ":") {
			g = GuestIP + g
		}
		proto := types.TCP
		if f.UDP {
			proto = types.UDP
		}
		if err := fw.Expose(proto, f.Host, g); err != nil {
			return err
		}
	}
	return nil
}

// VnetHdr: frames are bare Ethernet; the netstack does no offloads.
func (n *Network) VnetHdr() bool { return false }

// ReadPacket returns the next frame the network sends the guest.
func (n *Network) ReadPacket(p []byte) (int, error) {
	k, err := n.guest.Read(p)
	n.sent.Add(uint64(k))
	return k, err
}

// WritePacket hands the guest's frame to the network.
func (n *Network) WritePacket(iov [][]byte) error {
	if len(iov) == 0 {
		return nil // an empty frame: nothing to send
	}
	b := iov[0]
	if len(iov) > 1 {
		b = nil
		for _, v := range iov {
			b = append(b, v...)
		}
	}
	k, err := n.guest.Write(b)
	n.received.Add(uint64(k))
	return err
}

// SetOffloads: none are offered.
func (n *Network) SetOffloads(uint64) error { return nil }

// Close ends the link and stops the network's goroutines for this guest.
func (n *Network) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.cancel()
		err = n.guest.Close()
		<-n.done
	})
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Stats are the bytes the network sent to and received from the guest.
// (Counted here: gvisor-tap-vsock's own counters are read without the
// atomic loads their writers use.)
func (n *Network) Stats() (sent, received uint64) { return n.sent.Load(), n.received.Load() }
