// Package usernet is rootless user-mode networking for virtio-net: the
// guest's frames go to gvisor-tap-vsock's virtual network, a gVisor
// netstack inside govmm that plays gateway (192.168.127.1), answers DHCP
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

	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork"
	"github.com/sirupsen/logrus"
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
	vn        *virtualnetwork.VirtualNetwork
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
	cfg := &types.Configuration{
		MTU:               mtu,
		Subnet:            Subnet,
		GatewayIP:         GatewayIP,
		GatewayMacAddress: gatewayMAC,
		DHCPStaticLeases:  map[string]string{GuestIP: c.GuestMAC.String()},
		NAT:               map[string]string{HostIP: "127.0.0.1"},
		GatewayVirtualIPs: []string{HostIP},
		Forwards:          map[string]string{},
		DNS: []types.Zone{{
			Name:    "govmm.internal.",
			Records: []types.Record{{Name: "gateway", IP: net.ParseIP(GatewayIP)}, {Name: "host", IP: net.ParseIP(HostIP)}},
		}},
		Protocol: types.BessProtocol,
	}
	for _, f := range c.Forwards {
		g := f.Guest
		if strings.HasPrefix(g, ":") {
			g = GuestIP + g
		}
		key := f.Host
		if f.UDP {
			key = "udp:" + key
		}
		cfg.Forwards[key] = g
	}
	vn, err := virtualnetwork.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("user-mode network: %w", err)
	}
	ours, theirs := net.Pipe() // one Write is one frame, as BESS wants
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{vn: vn, guest: ours, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		_ = vn.AcceptBess(ctx, theirs) // ends when the link closes
	}()
	return n, nil
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
