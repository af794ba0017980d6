package usernet

// The gateway's DNS server (GatewayIP port 53, UDP and TCP): names under
// govmm.internal. are answered here (gateway, host); every other query is
// passed as it is to the host's own name server (the first nameserver of
// /etc/resolv.conf) and its answer passed back, so the guest resolves
// what the host resolves through DNS (not the host's /etc/hosts).

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Zone is the domain the gateway answers itself.
const Zone = "govmm.internal."

// upstreamTimeout bounds one query to the host's name server.
const upstreamTimeout = 5 * time.Second

// The queries answered at once, and the TCP connections served at once:
// past them a guest's queries are dropped (its resolver asks again), so a
// flood of them cannot pile up goroutines waiting on the name server.
const (
	maxQueries  = 64
	maxDNSConns = 16
)

// zoneRecords are the names in Zone and their IPv4 addresses.
var zoneRecords = map[string]string{
	"gateway." + Zone: GatewayIP,
	"host." + Zone:    HostIP,
}

// dnsServer answers queries; upstream is "ip:53", or "" when the host has
// no name server (then other names fail with SERVFAIL).
type dnsServer struct {
	upstream string
	queries  chan struct{} // a place per query being answered
	conns    chan struct{} // a place per TCP connection served
}

func newDNSServer(upstream string) *dnsServer {
	return &dnsServer{upstream: upstream, queries: make(chan struct{}, maxQueries), conns: make(chan struct{}, maxDNSConns)}
}

// hostNameServer is the first nameserver line of resolv.conf, as ip:53.
func hostNameServer(resolvConf string) string {
	f, err := os.Open(resolvConf)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if ip := net.ParseIP(strings.SplitN(fields[1], "%", 2)[0]); ip != nil {
				return net.JoinHostPort(ip.String(), "53")
			}
		}
	}
	return ""
}

// answer returns the reply to query q (a DNS message), or nil when q is
// not a query worth a reply. tcp says how to reach the upstream server.
func (d *dnsServer) answer(q []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil // garbage, or not a query: no reply
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 || h.OpCode != 0 {
		return reply(h, qs, dnsmessage.RCodeFormatError, nil)
	}
	name := strings.ToLower(qs[0].Name.String())
	if name == Zone || strings.HasSuffix(name, "."+Zone) {
		ip, ok := zoneRecords[name]
		switch {
		case !ok:
			return reply(h, qs, dnsmessage.RCodeNameError, nil)
		case qs[0].Type == dnsmessage.TypeA || qs[0].Type == dnsmessage.TypeALL:
			var a dnsmessage.AResource
			copy(a.A[:], net.ParseIP(ip).To4())
			return reply(h, qs, dnsmessage.RCodeSuccess, &a)
		}
		return reply(h, qs, dnsmessage.RCodeSuccess, nil) // the name has no other records
	}
	if d.upstream == "" {
		return reply(h, qs, dnsmessage.RCodeServerFailure, nil)
	}
	r, err := exchange(d.upstream, q, tcp)
	if err != nil {
		return reply(h, qs, dnsmessage.RCodeServerFailure, nil)
	}
	return r
}

// reply builds a response to h's question, with one A record when a is
// not nil.
func reply(h dnsmessage.Header, qs []dnsmessage.Question, rcode dnsmessage.RCode, a *dnsmessage.AResource) []byte {
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: a != nil || rcode == dnsmessage.RCodeNameError,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	for _, q := range qs {
		if err := b.Question(q); err != nil {
			return nil
		}
	}
	if a != nil {
		if err := b.StartAnswers(); err != nil {
			return nil
		}
		rh := dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: 60}
		if err := b.AResource(rh, *a); err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// exchange sends q to server and returns its answer: one datagram over
// UDP, or one length-prefixed message over TCP (RFC 1035 4.2.2).
func exchange(server string, q []byte, tcp bool) ([]byte, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c, err := net.DialTimeout(network, server, upstreamTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(upstreamTimeout)); err != nil {
		return nil, err
	}
	if !tcp {
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		k, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:k], nil
	}
	if err := writeTCPMessage(c, q); err != nil {
		return nil, err
	}
	return readTCPMessage(c)
}

// readTCPMessage reads one DNS message with its 2-byte length in front.
func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	m := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeTCPMessage writes m with its 2-byte length in front.
func writeTCPMessage(w io.Writer, m []byte) error {
	if len(m) > 0xffff {
		return fmt.Errorf("DNS message of %d bytes: too long for TCP", len(m))
	}
	_, err := w.Write(binary.BigEndian.AppendUint16(nil, uint16(len(m))))
	if err == nil {
		_, err = w.Write(m)
	}
	return err
}

// serveUDP answers the datagrams that reach pc until it closes.
func (d *dnsServer) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65535)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case d.queries <- struct{}{}:
		default:
			continue // too many in flight: dropped
		}
		q := append([]byte(nil), buf[:k]...)
		go func() {
			defer func() { <-d.queries }()
			if r := d.answer(q, false); r != nil {
				_, _ = pc.WriteTo(r, from)
			}
		}()
	}
}

// serveTCP answers queries on each connection l accepts until l closes.
func (d *dnsServer) serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		select {
		case d.conns <- struct{}{}:
		default:
			// Too many at once: refused. A failed close of a connection
			// nothing was read from or written to loses nothing.
			_ = c.Close()
			continue
		}
		go func() {
			defer func() { <-d.conns }()
			defer c.Close()
			for {
				_ = c.SetDeadline(time.Now().Add(2 * upstreamTimeout))
				q, err := readTCPMessage(c)
				if err != nil {
					return
				}
				r := d.answer(q, true)
				if r == nil || writeTCPMessage(c, r) != nil {
					return
				}
			}
		}()
	}
}
