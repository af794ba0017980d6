package usernet

// NAT: the guest's TCP connections and UDP flows to any address are
// answered by the gateway (the NIC is promiscuous and spoofs), and made
// again from the host with its own sockets. A connection to HostIP goes
// to the host's loopback. For TCP the guest's SYN is answered only once
// the host's connection is up, and refused with a reset when it fails, so
// the guest sees what the host saw.

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	udptransport "gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	// dialTimeout bounds the host's connect for a guest's SYN.
	dialTimeout = 10 * time.Second
	// udpIdle ends a UDP flow that carried nothing either way for this
	// long (Linux's conntrack keeps an unanswered UDP flow 30 s).
	udpIdle = 60 * time.Second
	// maxPendingSYNs bounds the guest's connections being dialled at once.
	maxPendingSYNs = 256
	// maxFlows bounds the TCP connections and UDP flows open at once,
	// each a host socket and two goroutines: past it a guest's new
	// connection is refused and a new flow's datagram dropped, so a guest
	// cannot spend the VMM's file descriptors or memory.
	maxFlows = 4096
)

// hostAddr is where a guest's packet to a goes on the host: HostIP is the
// host's loopback, anything else is itself.
func hostAddr(a tcpip.Address, port uint16) string {
	ip := net.IP(a.AsSlice())
	if a == addr4(HostIP) {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

// conns are the NAT's open connections and flows (the port forwards'
// too), closed with the network.
type conns struct {
	mu     sync.Mutex
	closed bool
	max    int // flows at once; 0 is maxFlows
	flows  int // places taken by reserve
	open   map[io.Closer]struct{}
	wg     sync.WaitGroup // the relays running
}

// reserve takes a flow's place before its host socket is made: false when
// the network is closing or the flows are at their limit. Each true is
// followed by one add or one cancel.
func (cs *conns) reserve() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	limit := cs.max
	if limit == 0 {
		limit = maxFlows
	}
	if cs.closed || cs.flows >= limit {
		return false
	}
	cs.flows++
	return true
}

// cancel gives back the place of a flow that did not start.
func (cs *conns) cancel() {
	cs.mu.Lock()
	cs.flows--
	cs.mu.Unlock()
}

// add keeps a reserved flow's connections until drop; false when the
// network is closing (they are closed and the place given back).
func (cs *conns) add(c ...io.Closer) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		for _, x := range c {
			// The network is going: the flow never ran, so nothing
			// was sent on it that a failed close could lose.
			_ = x.Close()
		}
		cs.flows--
		return false
	}
	if cs.open == nil {
		cs.open = map[io.Closer]struct{}{}
	}
	for _, x := range c {
		cs.open[x] = struct{}{}
	}
	cs.wg.Add(1)
	return true
}

// drop closes and forgets a flow's connections and gives its place back;
// one drop per add.
func (cs *conns) drop(c ...io.Closer) {
	cs.mu.Lock()
	for _, x := range c {
		delete(cs.open, x)
	}
	cs.flows--
	cs.mu.Unlock()
	for _, x := range c {
		// The relay has ended: whatever the peers sent has been passed
		// on or was cut by the peer itself, so there is nothing left
		// for a failed close to lose, and no one to tell.
		_ = x.Close()
	}
	cs.wg.Done()
}

// closeAll closes every connection and waits for their relays to end.
func (cs *conns) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	for c := range cs.open {
		_ = c.Close()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}

// forwardTCP makes the guest's connection on the host; it runs on a
// goroutine of the forwarder's for each SYN.
func (n *Network) forwardTCP(r *tcp.ForwarderRequest) {
	id := r.ID() // Local*: where the guest connects; Remote*: the guest
	if !n.nat.reserve() {
		r.Complete(true) // too many: refused
		return
	}
	h, err := net.DialTimeout("tcp", hostAddr(id.LocalAddress, id.LocalPort), dialTimeout)
	if err != nil {
		n.nat.cancel()
		r.Complete(true) // a reset, as the host got
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		n.nat.cancel()
		r.Complete(true)
		_ = h.Close()
		return
	}
	r.Complete(false)
	g := gonet.NewTCPConn(&wq, ep)
	if !n.nat.add(g, h) {
		return
	}
	go func() {
		defer n.nat.drop(g, h)
		splice(g, h.(*net.TCPConn))
	}()
}

// halfCloser is a stream whose sending half can end alone (FIN).
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// splice copies both ways until both sides have ended, passing each
// side's end of stream on as a FIN. An error on either side (a reset)
// closes both, so that neither direction waits on a peer gone.
func splice(a, b halfCloser) {
	var wg sync.WaitGroup
	wg.Add(2)
	one := func(dst, src halfCloser) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			_ = a.Close()
			_ = b.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	go one(a, b)
	go one(b, a)
	wg.Wait()
}

// forwardUDP starts a flow for the guest's first datagram to an address
// and port: the datagram and those after it go out through a host socket
// connected there, and the answers come back from that address. It runs
// on the netstack's goroutine, so it only sets the flow up.
func (n *Network) forwardUDP(r *udptransport.ForwarderRequest) {
	id := r.ID()
	ra, err := net.ResolveUDPAddr("udp", hostAddr(id.LocalAddress, id.LocalPort))
	if err != nil || !n.nat.reserve() {
		return // dropped: too many flows
	}
	h, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		n.nat.cancel()
		return // the datagram is lost, as on a network with no route
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		n.nat.cancel()
		_ = h.Close()
		return
	}
	g := gonet.NewUDPConn(&wq, ep)
	if !n.nat.add(g, h) {
		return
	}
	go func() {
		defer n.nat.drop(g, h)
		relayUDP(g, h)
	}()
}

// datagramConn is a connected datagram socket with deadlines.
type datagramConn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// relayUDP copies datagrams both ways until neither side has sent
// anything for udpIdle, or one side fails.
func relayUDP(g, h datagramConn) {
	var (
		mu      sync.Mutex
		last    = time.Now()
		stopped atomic.Bool // one direction ended
	)
	seen := func() {
		mu.Lock()
		last = time.Now()
		mu.Unlock()
	}
	idle := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return time.Since(last) >= udpIdle
	}
	one := func(dst, src datagramConn, done chan<- struct{}) {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			_ = src.SetReadDeadline(time.Now().Add(udpIdle))
			k, err := src.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !stopped.Load() && !idle() {
				continue // the other direction is still busy
			}
			if err != nil {
				return
			}
			seen()
			if _, err := dst.Write(buf[:k]); err != nil {
				return
			}
		}
	}
	toHost, toGuest := make(chan struct{}), make(chan struct{})
	go one(h, g, toHost)
	go one(g, h, toGuest)
	select { // one direction ended: end the other
	case <-toHost:
		stopped.Store(true)
		_ = h.SetReadDeadline(time.Now())
		<-toGuest
	case <-toGuest:
		stopped.Store(true)
		_ = g.SetReadDeadline(time.Now())
		<-toHost
	}
}

// startNAT sends the guest's TCP and UDP to the forwarders.
func (n *Network) startNAT() {
	n.s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(n.s, 0, maxPendingSYNs, n.forwardTCP).HandlePacket)
	n.s.SetTransportProtocolHandler(udptransport.ProtocolNumber, udptransport.NewForwarder(n.s, n.forwardUDP).HandlePacket)
}
