// Package usernet is rootless user-mode networking for virtio-net: the
// guest's frames go to a gVisor netstack inside govmm that plays gateway
// (192.168.127.1), answers DHCP (the guest gets 192.168.127.2) and DNS,
// and makes the guest's TCP and UDP connections with the host's own
// sockets (NAT, nat.go), as QEMU's -netdev user does. 192.168.127.254 is
// the host's loopback; DNS at the gateway answers govmm.internal. itself
// and passes other names to the host's name server (dns.go). Port forwards (hostfwd)
// listen on the host and connect into the guest. No privileges are
// needed: no TAP, no bridge, no capabilities.
package usernet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/insomniacslk/dhcp/dhcpv4/server4"
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

// The virtual network's addresses (those of gvisor-tap-vsock's gvproxy,
// which guests and users of it already know).
const (
	Subnet     = "192.168.127.0/24"
	GatewayIP  = "192.168.127.1"
	GuestIP    = "192.168.127.2"
	HostIP     = "192.168.127.254" // the host's 127.0.0.1, through NAT
	gatewayMAC = "5a:94:ef:e4:0c:dd"
	mtu        = 1500
)

// nicID is the stack's one NIC, the link to the guest.
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
	// NameServer is the host's name server, "ip:port", that DNS queries
	// for names outside Zone go to; "" is /etc/resolv.conf's first.
	NameServer string
	// Log gets the network's warnings (no name server for DNS); nil
	// discards them.
	Log io.Writer
}

// Network is a virtual network with one guest attached, a virtio-net
// Backend (frames without virtio_net_hdr).
type Network struct {
	s         *stack.Stack
	link      *wire
	dhcp      *server4.Server
	closers   []func() error // DNS sockets, port forwards' listeners
	nat       conns          // the guest's connections and the forwards' (nat.go)
	closeOnce sync.Once

	sent, received atomic.Uint64
}

// New starts the network: the netstack, its DHCP and DNS servers and the
// forwards' listeners.
func New(c Config) (*Network, error) {
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

	n.startNAT()

	if n.dhcp, err = serveDHCP(s, nicID, &leaser{
		self: net.ParseIP(GatewayIP).To4(), guest: net.ParseIP(GuestIP).To4(), gateway: net.ParseIP(GatewayIP).To4(),
		mask: subnet.Mask, mtu: mtu,
	}); err != nil {
		return n, err
	}
	ns := c.NameServer
	if ns == "" {
		ns = hostNameServer("/etc/resolv.conf")
		if ns == "" && c.Log != nil {
			fmt.Fprintln(c.Log, "govmm: -net user: /etc/resolv.conf names no name server: the guest's DNS answers only names in "+Zone)
		}
	}
	if err := n.serveDNS(gw, newDNSServer(ns)); err != nil {
		return n, err
	}
	for _, f := range c.Forwards {
		if err := n.forward(f); err != nil {
			proto := "tcp"
			if f.UDP {
				proto = "udp"
			}
			return n, fmt.Errorf("hostfwd %s %s: %w", proto, f.Host, err)
		}
	}
	return n, nil
}

// serveDNS answers DNS on the gateway's port 53, UDP and TCP (dns.go).
func (n *Network) serveDNS(gw tcpip.Address, d *dnsServer) error {
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
	go d.serveUDP(uc) // until uc closes
	go d.serveTCP(tl) // until tl closes
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
		n.nat.closeAll()
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
