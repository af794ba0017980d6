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

// dhcpRequest is a BOOTREQUEST of the given type with options opts
// (each whole: code, length, value) before the end option.
func dhcpRequest(typ byte, ciaddr net.IP, opts ...byte) []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2] = 1, 1, 6
	binary.BigEndian.PutUint32(b[4:], 0x72657121)
	if ciaddr != nil {
		copy(b[12:], ciaddr.To4())
	}
	copy(b[28:], guestMAC)
	binary.BigEndian.PutUint32(b[236:], 0x63825363)
	b = append(b, 53, 1, typ)
	b = append(b, opts...)
	return append(b, 255)
}

// dhcpOptions maps a reply's options by code.
func dhcpOptions(reply []byte) map[byte][]byte {
	m := map[byte][]byte{}
	opts := reply[240:]
	for i := 0; i < len(opts) && opts[i] != 255; {
		if opts[i] == 0 {
			i++
			continue
		}
		if i+1 >= len(opts) || i+2+int(opts[i+1]) > len(opts) {
			break
		}
		m[opts[i]] = opts[i+2 : i+2+int(opts[i+1])]
		i += 2 + int(opts[i+1])
	}
	return m
}

// TestDHCPRequest: a REQUEST for GuestIP naming the gateway as server is
// acked with the link's parameters, broadcast (the guest has no address
// yet); a REQUEST for another address is refused (NAK).
func TestDHCPRequest(t *testing.T) {
	g := newGuest(t, Config{})
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	gw, guestIP := net.ParseIP(GatewayIP).To4(), net.ParseIP(GuestIP).To4()
	req := dhcpRequest(3, nil, append(append([]byte{50, 4}, guestIP...), append([]byte{54, 4}, gw...)...)...)
	g.send(udp(bcast, net.IPv4zero, net.IPv4bcast, 68, 67, req))
	f := g.wait("DHCPACK", isUDPTo(68))
	if dst := net.IP(f[30:34]); !dst.Equal(net.IPv4bcast) || !bytes.Equal(f[:6], bcast) {
		t.Errorf("DHCPACK sent to %v (%v), want the broadcast address", dst, net.HardwareAddr(f[:6]))
	}
	if src := net.IP(f[26:30]); !src.Equal(gw) {
		t.Errorf("DHCPACK from %v, want %s", src, GatewayIP)
	}
	reply := f[42:]
	o := dhcpOptions(reply)
	if !net.IP(reply[16:20]).Equal(guestIP) || !bytes.Equal(o[53], []byte{5}) {
		t.Fatalf("reply type %v for %v, want an ACK of %s", o[53], net.IP(reply[16:20]), GuestIP)
	}
	for code, want := range map[byte][]byte{1: {255, 255, 255, 0}, 3: gw, 6: gw, 54: gw, 26: {0x05, 0xdc}} {
		if !bytes.Equal(o[code], want) {
			t.Errorf("option %d = %v, want %v", code, o[code], want)
		}
	}
	if len(o[51]) != 4 || binary.BigEndian.Uint32(o[51]) == 0 {
		t.Errorf("lease time %v", o[51])
	}

	wrong := net.ParseIP("192.168.127.77").To4()
	g.send(udp(bcast, net.IPv4zero, net.IPv4bcast, 68, 67, dhcpRequest(3, nil, append([]byte{50, 4}, wrong...)...)))
	f = g.wait("DHCPNAK", isUDPTo(68))
	if o := dhcpOptions(f[42:]); !bytes.Equal(o[53], []byte{6}) {
		t.Errorf("a REQUEST for %v got message type %v, want NAK (6)", wrong, o[53])
	}
}

// tcpSYN builds a TCP SYN from the guest (with its pseudo-header
// checksum: the netstack checks it).
func tcpSYN(dst net.HardwareAddr, src, to net.IP, sport, dport uint16) []byte {
	t := make([]byte, 20)
	binary.BigEndian.PutUint16(t, sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], 1000)
	t[12], t[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(t[14:], 65535)
	pseudo := append(append(append([]byte{}, src.To4()...), to.To4()...), 0, 6, 0, byte(len(t)))
	binary.BigEndian.PutUint16(t[16:], checksum(append(pseudo, t...)))
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(t)))
	copy(ip[12:], src.To4())
	copy(ip[16:], to.To4())
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return eth(dst, guestMAC, 0x0800, append(ip, t...))
}

func isTCP(sport, dport uint16, flags byte) func(f []byte) bool {
	return func(f []byte) bool {
		return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 6 &&
			binary.BigEndian.Uint16(f[34:]) == sport && binary.BigEndian.Uint16(f[36:]) == dport && f[47]&flags == flags
	}
}

// TestTCPToHost: a SYN to HostIP makes a connection to the host's
// loopback, and the guest gets the SYN-ACK from HostIP.
func TestTCPToHost(t *testing.T) {
	g := newGuest(t, Config{})
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	gw, _ := net.ParseMAC(gatewayMAC)
	g.send(tcpSYN(gw, net.ParseIP(GuestIP), net.ParseIP(HostIP), 40001, port))
	f := g.wait("SYN-ACK", isTCP(port, 40001, 0x12))
	if !net.IP(f[26:30]).Equal(net.ParseIP(HostIP)) {
		t.Errorf("SYN-ACK from %v, want %s", net.IP(f[26:30]), HostIP)
	}
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the host's listener saw no connection")
	}
}

// TestHostForward: a connection to a hostfwd's host port makes the
// gateway connect into the guest: ARP for GuestIP, then a SYN to the
// guest's port, from the gateway.
func TestHostForward(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	g := newGuest(t, Config{Forwards: []Forward{{Host: host, Guest: ":2222"}}})
	c, err := net.DialTimeout("tcp4", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := g.wait("a SYN to the guest's port 2222", func(f []byte) bool {
		return len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 6 &&
			binary.BigEndian.Uint16(f[36:]) == 2222 && f[47]&0x02 != 0
	})
	if src, dst := net.IP(f[26:30]), net.IP(f[30:34]); !src.Equal(net.ParseIP(GatewayIP)) || !dst.Equal(net.ParseIP(GuestIP)) {
		t.Errorf("SYN %v -> %v, want %s -> %s", src, dst, GatewayIP, GuestIP)
	}
	if !bytes.Equal(f[:6], guestMAC) {
		t.Errorf("SYN to MAC %v, want %v", net.HardwareAddr(f[:6]), guestMAC)
	}
}
