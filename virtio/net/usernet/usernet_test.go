package usernet

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

var guestMAC = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}

// guest is the test's side of the link: it builds frames as a guest's
// stack would, and answers ARP for GuestIP.
type guest struct {
	t  *testing.T
	n  *Network
	in chan []byte
}

func newGuest(t *testing.T, c Config) *guest {
	t.Helper()
	c.GuestMAC = guestMAC
	n, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	g := &guest{t: t, n: n, in: make(chan []byte, 64)}
	go func() {
		for {
			b := make([]byte, 65536)
			k, err := n.ReadPacket(b)
			if err != nil {
				close(g.in)
				return
			}
			f := b[:k]
			if binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 1 && net.IP(f[38:42]).Equal(net.ParseIP(GuestIP)) {
				g.send(arp(2, guestMAC, net.ParseIP(GuestIP), f[22:28], f[28:32], f[6:12]))
				continue
			}
			g.in <- f
		}
	}()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

func (g *guest) send(f []byte) {
	if err := g.n.WritePacket([][]byte{f[:14], f[14:]}); err != nil {
		g.t.Fatal(err)
	}
}

// wait returns the first frame match accepts.
func (g *guest) wait(what string, match func(f []byte) bool) []byte {
	g.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-g.in:
			if !ok {
				g.t.Fatalf("the link closed while waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			g.t.Fatalf("no %s within 10 s", what)
		}
	}
}

func eth(dst, src net.HardwareAddr, typ uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst...), src...), byte(typ>>8), byte(typ))
	return append(f, payload...)
}

func arp(op uint16, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP, dst net.HardwareAddr) []byte {
	p := []byte{0, 1, 8, 0, 6, 4, byte(op >> 8), byte(op)}
	p = append(p, sha...)
	p = append(p, spa.To4()...)
	p = append(p, tha...)
	p = append(p, tpa.To4()...)
	return eth(dst, guestMAC, 0x0806, p)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// udp builds an IPv4/UDP frame (UDP checksum 0: none, which IPv4 allows).
func udp(dst net.HardwareAddr, src, to net.IP, sport, dport uint16, payload []byte) []byte {
	u := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(u, sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	u = append(u, payload...)
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(u)))
	copy(ip[12:], src.To4())
	copy(ip[16:], to.To4())
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return eth(dst, guestMAC, 0x0800, append(ip, u...))
}

func isUDPTo(port uint16) func(f []byte) bool {
	return func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 17 && binary.BigEndian.Uint16(f[36:]) == port
	}
}

// TestDHCP: a DHCPDISCOVER from the guest's MAC is offered GuestIP, with
// the gateway as router and DNS server.
func TestDHCP(t *testing.T) {
	g := newGuest(t, Config{})
	b := make([]byte, 240)
	b[0], b[1], b[2] = 1, 1, 6 // BOOTREQUEST, Ethernet
	binary.BigEndian.PutUint32(b[4:], 0x676f766d)
	copy(b[28:], guestMAC)
	binary.BigEndian.PutUint32(b[236:], 0x63825363) // magic cookie
	b = append(b, 53, 1, 1, 255)                    // DHCPDISCOVER
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	g.send(udp(bcast, net.IPv4zero, net.IPv4bcast, 68, 67, b))
	f := g.wait("DHCPOFFER", isUDPTo(68))
	reply := f[42:]
	if yi := net.IP(reply[16:20]); !yi.Equal(net.ParseIP(GuestIP)) {
		t.Errorf("DHCP offered %v, want %s", yi, GuestIP)
	}
	opts := reply[240:]
	var router net.IP
	for i := 0; i+1 < len(opts) && opts[i] != 255; i += 2 + int(opts[i+1]) {
		if opts[i] == 3 {
			router = net.IP(opts[i+2 : i+6])
		}
	}
	if !router.Equal(net.ParseIP(GatewayIP)) {
		t.Errorf("DHCP router = %v, want %s", router, GatewayIP)
	}
}

// TestARPAndUDPToHost: the gateway answers ARP; a UDP datagram to
// HostIP reaches a listener on the host's loopback, and its answer comes
// back to the guest.
func TestARPAndUDPToHost(t *testing.T) {
	g := newGuest(t, Config{})
	zero := make(net.HardwareAddr, 6)
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	g.send(arp(1, guestMAC, net.ParseIP(GuestIP), zero, net.ParseIP(GatewayIP), bcast))
	f := g.wait("ARP reply from the gateway", func(f []byte) bool {
		return binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2
	})
	gw := net.HardwareAddr(f[22:28])
	if gw.String() != gatewayMAC {
		t.Errorf("gateway MAC %v, want %s", gw, gatewayMAC)
	}
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.LocalAddr().(*net.UDPAddr).Port)
	g.send(udp(gw, net.ParseIP(GuestIP), net.ParseIP(HostIP), 40000, port, []byte("hello from the guest")))
	if err := l.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := l.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "hello from the guest" {
		t.Fatalf("host listener got %q, %v", buf[:n], err)
	}
	if _, err := l.WriteToUDP([]byte("hello from the host"), from); err != nil {
		t.Fatal(err)
	}
	f = g.wait("the host's UDP answer", isUDPTo(40000))
	if !bytes.Contains(f, []byte("hello from the host")) || !net.IP(f[26:30]).Equal(net.ParseIP(HostIP)) {
		t.Errorf("answer frame from %v holds %q", net.IP(f[26:30]), f[42:])
	}
	if sent, recv := g.n.Stats(); sent == 0 || recv == 0 {
		t.Errorf("Stats() = %d, %d, want both non-zero", sent, recv)
	}
}
