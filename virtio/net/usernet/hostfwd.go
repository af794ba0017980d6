package usernet

// Port forwards (QEMU's hostfwd): a listener on the host whose
// connections, or datagrams, the gateway passes into the guest.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// guestAddr parses a forward's guest side, "addr:port" or ":port" (the
// guest's DHCP address).
func guestAddr(s string) (tcpip.FullAddress, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return tcpip.FullAddress{}, err
	}
	if host == "" {
		host = GuestIP
	}
	ip := net.ParseIP(host).To4()
	if ip == nil {
		return tcpip.FullAddress{}, fmt.Errorf("guest address %q: give an IPv4 address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return tcpip.FullAddress{}, fmt.Errorf("guest port %q: give 1-65535", port)
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4Slice(ip), Port: uint16(p)}, nil
}

// forward starts f's host listener.
func (n *Network) forward(f Forward) error {
	to, err := guestAddr(f.Guest)
	if err != nil {
		return err
	}
	if f.UDP {
		pc, err := net.ListenPacket("udp", f.Host)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, pc.Close)
		go n.forwardUDPIn(pc, to)
		return nil
	}
	l, err := net.Listen("tcp", f.Host)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, l.Close)
	go n.forwardTCPIn(l, to)
	return nil
}

// forwardTCPIn connects each connection l accepts to the guest's port.
func (n *Network) forwardTCPIn(l net.Listener, to tcpip.FullAddress) {
	for {
		h, err := l.Accept()
		if err != nil {
			return
		}
		if !n.nat.reserve() {
			// Too many at once: refused. Nothing was sent on it, so a
			// failed close loses nothing.
			_ = h.Close()
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			defer cancel()
			g, err := gonet.DialContextTCP(ctx, n.s, to, ipv4.ProtocolNumber)
			if err != nil {
				n.nat.cancel()
				// The guest refused or did not answer: the host's client
				// sees its connection end; nothing was sent to lose.
				_ = h.Close()
				return
			}
			if !n.nat.add(g, h) {
				return
			}
			defer n.nat.drop(g, h)
			splice(g, h.(*net.TCPConn))
		}()
	}
}

// forwardUDPIn passes each host client's datagrams to the guest's port
// through a flow of its own, whose answers go back to that client.
func (n *Network) forwardUDPIn(pc net.PacketConn, to tcpip.FullAddress) {
	var (
		mu    sync.Mutex
		flows = map[string]*gonet.UDPConn{}
	)
	buf := make([]byte, 65535)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		mu.Lock()
		g, ok := flows[from.String()]
		if !ok {
			if !n.nat.reserve() {
				mu.Unlock()
				continue // too many flows: dropped
			}
			g, err = gonet.DialUDP(n.s, nil, &to, ipv4.ProtocolNumber)
			if err != nil {
				n.nat.cancel()
				mu.Unlock()
				continue
			}
			if !n.nat.add(g) {
				mu.Unlock()
				continue
			}
			flows[from.String()] = g
			go func(from net.Addr) { // the guest's answers, until the flow idles
				defer n.nat.drop(g)
				defer func() {
					mu.Lock()
					delete(flows, from.String())
					mu.Unlock()
				}()
				ans := make([]byte, 65535)
				for {
					_ = g.SetReadDeadline(time.Now().Add(udpIdle))
					k, err := g.Read(ans)
					if err != nil {
						return
					}
					if _, err := pc.WriteTo(ans[:k], from); err != nil {
						return
					}
				}
			}(from)
		}
		mu.Unlock()
		_, _ = g.Write(buf[:k])
	}
}
