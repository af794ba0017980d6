// Package usernet is rootless user-mode networking for virtio-net: the
// guest's frames go to a gVisor netstack inside govmm that plays gateway
// (192.168.127.1), answers DHCP (the guest gets 192.168.127.2) and DNS,
// and makes the guest's TCP and UDP connections with the host's own
// sockets (NAT, gvisor-tap-vsock's forwarders), as QEMU's -netdev user
// does. 192.168.127.254 is the host's loopback. Port forwards (hostfwd)
// listen on the host and connect into the guest. No privileges are
// needed: no TAP, no bridge, no capabilities.
package usernet

import (
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
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/sirupsen/logrus"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	arpnetwork "gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	udptransport "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
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

// nicID is the stack's one NIC, the link to the guest. It is 1 because
// gvisor-tap-vsock's port forwarder dials into the guest through NIC 1.
const nicID tcpip.NICID = 1

// Forward is a hostfwd rule: connections to Host (host:port on the host)
// go to Guest (addr:port in the guest; an empty addr is GuestIP).
type Forward struct {
	UDP         bool
	Host, Guest string
}

// Config is one network.
type Config struct {
	// GuestMAC is the virtio-net device's. (The link has one guest, so
	// the DHCP server leases GuestIP to whichever client asks, this MAC
	// or one the guest sets later.)
	GuestMAC net.HardwareAddr
	Forwards []Forward
	// Log gets the netstack's warnings; nil discards them.
	Log io.Writer
}

// Network is a virtual network with one guest attached, a virtio-net
// Backend (frames without virtio_net_hdr).
type Network struct {
	s         *stack.Stack
	link      *wire
	dhcp      *server4.Server
	closers   []func() error // DNS sockets, port forwards
	closeOnce sync.Once

	sent, received atomic.Uint64
}

var logOnce sync.Once

// New starts the network: the netstack, its DHCP and DNS servers and the
// forwards' listeners.
func New(c Config) (*Network, error) {
	logOnce.Do(func() {
		// gvisor-tap-vsock's forwarders log through logrus's standard logger.
		logrus.SetLevel(logrus.WarnLevel)
		if c.Log != nil {
			logrus.SetOutput(c.Log)
		} else {
			logrus.SetOutput(io.Discard)
		}
	})
	n, err := start(c)
	if err != nil {
		return nil, fmt.Errorf("user-mode network: %w", err)
	}
	return n, nil
}

func start(c Config) (n *Network, err error) {
	gw, host := addr4(GatewayIP), addr4(HostIP)
	_, subnet, _ := net.ParseCIDR(Subnet)
	prefix, _ := subnet.Mask.Size()
	mac, perr := tcpip.ParseMACAddress(gatewayMAC)
	if perr != nil {
		return nil, perr
	}

	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arpnetwork.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udptransport.NewProtocol, icmp.NewProtocol4},
	})
	n = &Network{s: s, link: newWire(mac, mtu)}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	if e := s.CreateNIC(nicID, n.link); e != nil {
		return n, tcpipError{e}
	}
	// The gateway's own address comes first: it is the NIC's primary one,
	// the source of what the gateway sends (DHCP's broadcasts among them).
	// HostIP is the NIC's too, so that the gateway answers ARP for it.
	for _, a := range []tcpip.Address{gw, host} {
		pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: a, PrefixLen: prefix}}
		if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
			return n, tcpipError{e}
		}
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nicID}})
	// Whatever the guest sends to any address is the gateway's to handle
	// (promiscuous), and the gateway answers from that address (spoofing):
	// that is how the forwarders stand in for the whole Internet.
	if e := s.SetPromiscuousMode(nicID, true); e != nil {
		return n, tcpipError{e}
	}
	if e := s.SetSpoofing(nicID, true); e != nil {
		return n, tcpipError{e}
	}

	// NAT: connections to HostIP are made to the host's loopback.
	nat := map[tcpip.Address]tcpip.Address{host: addr4("127.0.0.1")}
	var natLock sync.Mutex
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, forwarder.TCP(s, nat, &natLock, false).HandlePacket)
	s.SetTransportProtocolHandler(udptransport.ProtocolNumber, forwarder.UDP(s, nat, &natLock, false).HandlePacket)

	if n.dhcp, err = serveDHCP(s, nicID, &leaser{
		self: net.ParseIP(GatewayIP).To4(), guest: net.ParseIP(GuestIP).To4(), gateway: net.ParseIP(GatewayIP).To4(),
		mask: subnet.Mask, mtu: mtu,
	}); err != nil {
		return n, err
	}
	if err := n.serveDNS(gw); err != nil {
		return n, err
	}

	ports := forwarder.NewPortsForwarder(s)
	for _, f := range c.Forwards {
		g := f.Guest
		if strings.HasPrefix(g, ":") {
			g = GuestIP + g
		}
		proto := types.TCP
		if f.UDP {
			proto = types.UDP
		}
		if err := ports.Expose(proto, f.Host, g); err != nil {
			return n, fmt.Errorf("hostfwd %s %s: %w", proto, f.Host, err)
		}
		n.closers = append(n.closers, func() error { return ports.Unexpose(proto, f.Host) })
	}
	return n, nil
}

// serveDNS answers DNS on the gateway's port 53, UDP and TCP: the names
// under govmm.internal. itself, the rest through the host's resolver.
func (n *Network) serveDNS(gw tcpip.Address) error {
	at := tcpip.FullAddress{NIC: nicID, Addr: gw, Port: 53}
	uc, err := gonet.DialUDP(n.s, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, uc.Close)
	tl, err := gonet.ListenTCP(n.s, at, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, tl.Close)
	srv, err := dns.New(uc, tl, []types.Zone{{
		Name:    "govmm.internal.",
		Records: []types.Record{{Name: "gateway", IP: net.ParseIP(GatewayIP)}, {Name: "host", IP: net.ParseIP(HostIP)}},
	}})
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve() }()    // until uc closes
	go func() { _ = srv.ServeTCP() }() // until tl closes
	return nil
}

func addr4(s string) tcpip.Address { return tcpip.AddrFrom4Slice(net.ParseIP(s).To4()) }

// VnetHdr: frames are bare Ethernet; the netstack does no offloads.
func (n *Network) VnetHdr() bool { return false }

// ReadPacket returns the next frame the network sends the guest.
func (n *Network) ReadPacket(p []byte) (int, error) {
	f, err := n.link.next()
	if err != nil {
		return 0, err
	}
	k := copy(p, f)
	n.sent.Add(uint64(k))
	return k, nil
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
	n.received.Add(uint64(len(b)))
	return n.link.fromGuest(b)
}

// SetOffloads: none are offered.
func (n *Network) SetOffloads(uint64) error { return nil }

// Close ends the link and stops the network: its servers, forwards and
// netstack.
func (n *Network) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		n.link.cut()
		if n.dhcp != nil {
			errs = append(errs, n.dhcp.Close())
		}
		for _, c := range n.closers {
			errs = append(errs, c())
		}
		n.s.Close()
		n.s.Wait()
	})
	err := errors.Join(errs...)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Stats are the bytes the network sent to and received from the guest.
func (n *Network) Stats() (sent, received uint64) { return n.sent.Load(), n.received.Load() }
