package usernet

// End-to-end tests of the NAT, the port forwards and DNS: a second gVisor
// stack plays the guest (GuestIP, the gateway as its default route) on
// the other end of the virtual wire, and real host sockets on 127.0.0.1
// play the outside world.

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	arpnetwork "gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	udptransport "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// guestStack starts a Network with c and a guest's netstack wired to it.
func guestStack(t *testing.T, c Config) (*stack.Stack, *Network) {
	t.Helper()
	c.GuestMAC = guestMAC
	n, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arpnetwork.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udptransport.NewProtocol},
	})
	w := newWire(tcpip.LinkAddress(guestMAC), mtu)
	if e := s.CreateNIC(1, w); e != nil {
		t.Fatal(e)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr4(GuestIP), PrefixLen: 24}}
	if e := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); e != nil {
		t.Fatal(e)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, Gateway: addr4(GatewayIP), NIC: 1}})
	go func() { // the guest's frames to the network
		for {
			f, err := w.next()
			if err != nil {
				return
			}
			if n.WritePacket([][]byte{f}) != nil {
				return
			}
		}
	}()
	go func() { // the network's frames to the guest
		b := make([]byte, 65536)
		for {
			k, err := n.ReadPacket(b)
			if err != nil {
				return
			}
			if w.fromGuest(append([]byte(nil), b[:k]...)) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		w.cut()
		s.Close()
	})
	return s, n
}

func fullAddr(ip string, port int) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: addr4(ip), Port: uint16(port)}
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// upperServer accepts one connection on l, reads to its end, and writes
// back the bytes upper-cased, then closes.
func upperServer(t *testing.T, l net.Listener) {
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		_, _ = c.Write(bytes.ToUpper(b))
	}()
}

// upperUDPServer answers each datagram on pc with its bytes upper-cased,
// until pc closes.
func upperUDPServer(pc net.PacketConn) {
	b := make([]byte, 2048)
	for {
		k, from, err := pc.ReadFrom(b)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(bytes.ToUpper(b[:k]), from)
	}
}

// TestNATTCPData: the guest's connection to HostIP reaches a host
// listener on 127.0.0.1; data goes both ways and each side's end (FIN)
// is passed on, 1 MiB of it to cross many segments.
func TestNATTCPData(t *testing.T) {
	s, _ := guestStack(t, Config{})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	upperServer(t, l)
	c, err := gonet.DialContextTCP(ctx10s(t), s, fullAddr(HostIP, l.Addr().(*net.TCPAddr).Port), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	data := bytes.Repeat([]byte("guest data "), 100000)
	go func() {
		_, _ = c.Write(data)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.ToUpper(data)) {
		t.Errorf("the guest got %d bytes back, want the %d it sent, upper-cased", len(got), len(data))
	}
}

// TestNATTCPRefused: a connection to a host port nobody listens on is
// refused in the guest too (a reset), not left hanging.
func TestNATTCPRefused(t *testing.T) {
	s, _ := guestStack(t, Config{})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = gonet.DialContextTCP(ctx10s(t), s, fullAddr(HostIP, port), ipv4.ProtocolNumber)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dialling a closed host port from the guest = %v, want connection refused", err)
	}
}

// TestNATUDPData: the guest's datagrams reach a host UDP server, and its
// answers come back from HostIP.
func TestNATUDPData(t *testing.T) {
	s, _ := guestStack(t, Config{})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go upperUDPServer(pc)
	to := fullAddr(HostIP, pc.LocalAddr().(*net.UDPAddr).Port)
	c, err := gonet.DialUDP(s, nil, &to, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 64)
		k, err := c.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b[:k]); got != strings.ToUpper(msg) {
			t.Errorf("answer to %q = %q", msg, got)
		}
	}
}

// TestHostForwardData: TCP and UDP port forwards carry data into a
// guest's server and its answers back out.
func TestHostForwardData(t *testing.T) {
	free := func(network string) string {
		var a string
		if network == "tcp4" {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			a = l.Addr().String()
			l.Close()
		} else {
			pc, err := net.ListenPacket(network, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			a = pc.LocalAddr().String()
			pc.Close()
		}
		return a
	}
	tcpHost, udpHost := free("tcp4"), free("udp4")
	s, _ := guestStack(t, Config{Forwards: []Forward{{Host: tcpHost, Guest: ":2222"}, {UDP: true, Host: udpHost, Guest: GuestIP + ":5353"}}})

	l, err := gonet.ListenTCP(s, fullAddr(GuestIP, 2222), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	upperServer(t, l)
	c, err := net.DialTimeout("tcp4", tcpHost, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("into the guest")); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "INTO THE GUEST" {
		t.Errorf("through the TCP forward: %q, %v; want %q", got, err, "INTO THE GUEST")
	}

	at := fullAddr(GuestIP, 5353)
	gc, err := gonet.DialUDP(s, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	go upperUDPServer(gc)
	uc, err := net.Dial("udp4", udpHost)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	_ = uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := uc.Write([]byte("datagram")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	k, err := uc.Read(b)
	if err != nil || string(b[:k]) != "DATAGRAM" {
		t.Errorf("through the UDP forward: %q, %v; want DATAGRAM", b[:k], err)
	}
}

// query builds a DNS query for name and type (t may be nil: a fuzz
// seed, where a failure panics).
func query(t testing.TB, id uint16, name string, typ dnsmessage.Type) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	err := b.StartQuestions()
	if err == nil {
		err = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	}
	m, ferr := b.Finish()
	if err == nil {
		err = ferr
	}
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatal(err)
	}
	return m
}

// parseAnswer returns a reply's id, rcode and A records.
func parseAnswer(t *testing.T, m []byte) (uint16, dnsmessage.RCode, []string) {
	t.Helper()
	var msg dnsmessage.Message
	if err := msg.Unpack(m); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	var as []string
	for _, a := range msg.Answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			as = append(as, net.IP(r.A[:]).String())
		}
	}
	return msg.Header.ID, msg.Header.RCode, as
}

// fakeNameServer answers every UDP query with the A record 10.1.2.3.
func fakeNameServer(t *testing.T) string {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 2048)
		for {
			k, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(b[:k])
			if err != nil {
				continue
			}
			qs, _ := p.AllQuestions()
			if r := reply(h, qs, dnsmessage.RCodeSuccess, &dnsmessage.AResource{A: [4]byte{10, 1, 2, 3}}); r != nil {
				_, _ = pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// TestDNS: the guest asks the gateway over UDP: the zone's names are
// answered there, an unknown one in the zone is NXDOMAIN, and any other
// name goes to the host's name server; over TCP too.
func TestDNS(t *testing.T) {
	s, _ := guestStack(t, Config{NameServer: fakeNameServer(t)})
	dns := fullAddr(GatewayIP, 53)
	c, err := gonet.DialUDP(s, nil, &dns, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tests := []struct {
		name  string
		rcode dnsmessage.RCode
		as    []string
	}{
		{"host." + Zone, dnsmessage.RCodeSuccess, []string{HostIP}},
		{"GATEWAY.govmm.internal.", dnsmessage.RCodeSuccess, []string{GatewayIP}},
		{"nope." + Zone, dnsmessage.RCodeNameError, nil},
		{"example.com.", dnsmessage.RCodeSuccess, []string{"10.1.2.3"}},
	}
	for i, tt := range tests {
		if _, err := c.Write(query(t, uint16(100+i), tt.name, dnsmessage.TypeA)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 2048)
		k, err := c.Read(b)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		id, rcode, as := parseAnswer(t, b[:k])
		if id != uint16(100+i) || rcode != tt.rcode || strings.Join(as, ",") != strings.Join(tt.as, ",") {
			t.Errorf("%s: id %d, %v, %v; want id %d, %v, %v", tt.name, id, rcode, as, 100+i, tt.rcode, tt.as)
		}
	}

	tc, err := gonet.DialContextTCP(ctx10s(t), s, dns, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeTCPMessage(tc, query(t, 7, "gateway."+Zone, dnsmessage.TypeA)); err != nil {
		t.Fatal(err)
	}
	m, err := readTCPMessage(tc)
	if err != nil {
		t.Fatal(err)
	}
	if id, rcode, as := parseAnswer(t, m); id != 7 || rcode != dnsmessage.RCodeSuccess || len(as) != 1 || as[0] != GatewayIP {
		t.Errorf("over TCP: id %d, %v, %v; want 7, success, [%s]", id, rcode, as, GatewayIP)
	}
}

// TestDNSAnswer covers answer's edges without a network: garbage gets no
// reply, a response is not answered, a zone name's AAAA has no records,
// and no name server means SERVFAIL.
func TestDNSAnswer(t *testing.T) {
	d := newDNSServer("")
	if r := d.answer([]byte{1, 2, 3}, false); r != nil {
		t.Errorf("garbage got a reply: %x", r)
	}
	q := query(t, 9, "host."+Zone, dnsmessage.TypeAAAA)
	if _, rcode, as := parseAnswer(t, d.answer(q, false)); rcode != dnsmessage.RCodeSuccess || len(as) != 0 {
		t.Errorf("AAAA for a zone name: %v %v, want success and no A records", rcode, as)
	}
	resp := append([]byte(nil), q...)
	resp[2] |= 0x80 // QR: a response
	if r := d.answer(resp, false); r != nil {
		t.Error("a response got a reply")
	}
	if _, rcode, _ := parseAnswer(t, d.answer(query(t, 1, "example.com.", dnsmessage.TypeA), false)); rcode != dnsmessage.RCodeServerFailure {
		t.Errorf("without a name server: %v, want SERVFAIL", rcode)
	}
}

// TestHostNameServer reads resolv.conf's first usable nameserver line.
func TestHostNameServer(t *testing.T) {
	f := t.TempDir() + "/resolv.conf"
	for _, tt := range []struct{ text, want string }{
		{"# comment\nsearch example\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n", "10.0.0.53:53"},
		{"nameserver fe80::1%eth0\n", "[fe80::1]:53"},
		{"nameserver bogus\nnameserver 1.1.1.1\n", "1.1.1.1:53"},
		{"search only\n", ""},
	} {
		if err := os.WriteFile(f, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := hostNameServer(f); got != tt.want {
			t.Errorf("hostNameServer(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	if got := hostNameServer(f + ".missing"); got != "" {
		t.Errorf("a missing resolv.conf gave %q", got)
	}
}

// TestNATFlowLimit: past the limit of open flows a guest's new connection
// is refused, and a closed one gives its place back.
func TestNATFlowLimit(t *testing.T) {
	s, n := guestStack(t, Config{})
	n.nat.max = 2
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // a server that closes when its client does
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	to := fullAddr(HostIP, l.Addr().(*net.TCPAddr).Port)
	var open []*gonet.TCPConn
	for range 2 {
		c, err := gonet.DialContextTCP(ctx10s(t), s, to, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	if _, err := gonet.DialContextTCP(ctx10s(t), s, to, ipv4.ProtocolNumber); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a third connection with room for two = %v, want refused", err)
	}
	open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := gonet.DialContextTCP(ctx10s(t), s, to, ipv4.ProtocolNumber)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one of two closed, a new connection is still refused: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDNSQueryFlood: queries the host's name server never answers pile up
// no further than maxQueries goroutines.
func TestDNSQueryFlood(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s, _ := guestStack(t, Config{NameServer: silent.LocalAddr().String()})
	dns := fullAddr(GatewayIP, 53)
	c, err := gonet.DialUDP(s, nil, &dns, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := runtime.NumGoroutine()
	for i := range 300 {
		if _, err := c.Write(query(t, uint16(i), "example.com.", dnsmessage.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the queries reach the server; each would wait 5 s upstream
	if grew := runtime.NumGoroutine() - before; grew > maxQueries+20 {
		t.Errorf("%d goroutines more after 300 unanswered queries, want at most about %d", grew, maxQueries)
	}
}
