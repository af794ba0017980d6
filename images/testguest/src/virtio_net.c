/*
 * virtio_net.c - the network part of mode=virtio: with net_me and
 * net_peer (IPv4 addresses in hex, 0a000002 for 10.0.0.2) the driver
 * posts receive buffers, asks for the peer's MAC address with ARP and
 * pings it; every frame is built here, in ring 0, and every wait is for
 * the queue's MSI-X interrupt. Lines: "virtio-net mac=<mac>",
 * "virtio-net arp reply from <peer> mac=<mac>", "virtio-net ping reply
 * seq=<n>" for each of pings, "virtio-net ok".
 */
#include "virtio_dev.h"

struct net_args net_args;

#define RX_BUFS 16
#define RX_BUF_SIZE 2048 /* a whole frame and its header: no MRG_RXBUF */
#define NET_HDR 12
#define ETH_ARP 0x0806
#define ETH_IP 0x0800

static u8 my_mac[6], peer_mac[6];

static void put16be(u8 *p, u16 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }
static u16 get16be(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static void put32be(u8 *p, u32 v) { put16be(p, (u16)(v >> 16)), put16be(p + 2, (u16)v); }
static u32 get32be(const u8 *p) { return (u32)get16be(p) << 16 | get16be(p + 2); }
static void copy(u8 *d, const u8 *s, u32 n)
{
	for (u32 i = 0; i < n; i++)
		d[i] = s[i];
}

/* The Internet checksum (RFC 1071). */
static u16 csum(const u8 *p, u32 n)
{
	u32 s = 0;
	for (u32 i = 0; i + 1 < n; i += 2)
		s += get16be(p + i);
	if (n & 1)
		s += (u32)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	return (u16)~s;
}

static void print_mac(const u8 *m)
{
	for (int i = 0; i < 6; i++) {
		if (i)
			putc(':');
		puthex(m[i], 2);
	}
}

struct netq {
	struct vdev *d;
	struct vq *rx, *tx;
	u64 rx_bufs, tx_buf;
};

/* post_rx makes receive buffer i available again. */
static void post_rx(struct netq *n, u32 i)
{
	struct vq *q = n->rx;
	q->desc[i] = (struct vring_desc){n->rx_bufs + i * RX_BUF_SIZE, RX_BUF_SIZE, VRING_DESC_F_WRITE, 0};
	q->avail[2 + q->avail_idx % q->size] = (u16)i;
	__asm__ volatile("" ::: "memory");
	q->avail_idx++;
	q->avail[1] = q->avail_idx;
}

/* send transmits the frame in tx_buf (after its header) of len bytes. */
static void send(struct netq *n, u32 len)
{
	if (len < 60)
		len = 60; /* Ethernet's minimum, padded with what is there */
	u8 *h = (u8 *)n->tx_buf;
	for (int i = 0; i < NET_HDR; i++)
		h[i] = 0;
	u64 a[1] = {n->tx_buf};
	u32 l[1] = {NET_HDR + len};
	u16 f[1] = {0};
	post_wait(n->d, n->tx, 1, a, l, f, 1);
}

/* recv waits for the next received frame and returns it (after the
 * header); *len gets its length. The caller reposts slot *slot. */
static u8 *recv(struct netq *n, u32 *len, u32 *slot)
{
	struct vq *q = n->rx;
	u32 vec = n->d->vec0 + 1;
	while ((u16)(q->used[0] >> 16) == q->used_seen)
		virtio_wait_irq(vec, virtio_irq_count(vec) + 1);
	u16 s = q->used_seen % q->size;
	u32 id = q->used[1 + 2 * s], l = q->used[2 + 2 * s];
	q->used_seen++;
	*slot = id;
	*len = l > NET_HDR ? l - NET_HDR : 0;
	return (u8 *)(n->rx_bufs + id * RX_BUF_SIZE + NET_HDR);
}

static void repost(struct netq *n, u32 slot)
{
	post_rx(n, slot);
	*n->rx->notify = n->rx->index;
}

static u32 my_ip;   /* answered in ARP once known */
static u32 peer_ip; /* whose MAC arp() found */
static void arp_reply(struct netq *n, const u8 *req);

/* next waits for a frame that is not an ARP request for my_ip (those
 * are answered here). */
static u8 *next(struct netq *n, u32 *len, u32 *slot)
{
	for (;;) {
		u8 *r = recv(n, len, slot);
		if (my_ip && *len >= 42 && get16be(r + 12) == ETH_ARP && get16be(r + 20) == 1 && get32be(r + 38) == my_ip) {
			arp_reply(n, r);
			repost(n, *slot);
			continue;
		}
		return r;
	}
}

static void eth(u8 *f, const u8 *dst, u16 type)
{
	copy(f, dst, 6);
	copy(f + 6, my_mac, 6);
	put16be(f + 12, type);
}

static void arp(struct netq *n, u32 me, u32 peer)
{
	static const u8 bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	u8 *f = (u8 *)(n->tx_buf + NET_HDR);
	for (int i = 0; i < 60; i++)
		f[i] = 0;
	eth(f, bcast, ETH_ARP);
	u8 *a = f + 14;
	put16be(a, 1);      /* Ethernet */
	put16be(a + 2, ETH_IP);
	a[4] = 6, a[5] = 4;
	put16be(a + 6, 1);  /* request */
	copy(a + 8, my_mac, 6);
	put32be(a + 14, me);
	put32be(a + 24, peer);
	send(n, 42);
	for (int tries = 0; tries < 64; tries++) {
		u32 len, slot;
		u8 *r = next(n, &len, &slot);
		int ok = len >= 42 && get16be(r + 12) == ETH_ARP && get16be(r + 20) == 2 && get32be(r + 28) == peer;
		if (ok) {
			copy(peer_mac, r + 22, 6);
			peer_ip = peer;
		}
		repost(n, slot);
		if (ok) {
			puts("virtio-net arp reply from ");
			puthex(peer, 8);
			puts(" mac=");
			print_mac(peer_mac);
			puts("\n");
			return;
		}
	}
	vfail("no ARP reply from the peer among 64 frames");
}

static void ping(struct netq *n, u32 me, u32 peer, u16 seq)
{
	u8 *f = (u8 *)(n->tx_buf + NET_HDR);
	eth(f, peer_mac, ETH_IP);
	u8 *ip = f + 14, *icmp = ip + 20;
	u32 payload = 32, iplen = 20 + 8 + payload;
	ip[0] = 0x45, ip[1] = 0;
	put16be(ip + 2, (u16)iplen);
	put16be(ip + 4, seq);
	put16be(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64, ip[9] = 1;   /* TTL, ICMP */
	put16be(ip + 10, 0);
	put32be(ip + 12, me);
	put32be(ip + 16, peer);
	put16be(ip + 10, csum(ip, 20));
	icmp[0] = 8, icmp[1] = 0; /* echo request */
	put16be(icmp + 2, 0);
	put16be(icmp + 4, 0x6776); /* identifier "gv" */
	put16be(icmp + 6, seq);
	for (u32 i = 0; i < payload; i++)
		icmp[8 + i] = (u8)(i + seq);
	put16be(icmp + 2, csum(icmp, 8 + payload));
	send(n, 14 + iplen);
	for (int tries = 0; tries < 64; tries++) {
		u32 len, slot;
		u8 *r = next(n, &len, &slot);
		u8 *rip = r + 14, *ric = rip + 20;
		int ok = len >= 14 + 28 && get16be(r + 12) == ETH_IP && rip[9] == 1 && get32be(rip + 12) == peer &&
			 ric[0] == 0 && get16be(ric + 4) == 0x6776 && get16be(ric + 6) == seq && csum(rip, 20) == 0;
		repost(n, slot);
		if (ok) {
			puts("virtio-net ping reply seq=");
			putdec(seq);
			puts("\n");
			return;
		}
	}
	vfail("no ICMP echo reply among 64 frames");
}

/* ---- user-mode networking: DHCP, UDP and TCP to the host ------------- */

static void arp_reply(struct netq *n, const u8 *req)
{
	u8 *f = (u8 *)(n->tx_buf + NET_HDR);
	for (int i = 0; i < 60; i++)
		f[i] = 0;
	eth(f, req + 6, ETH_ARP);
	u8 *a = f + 14;
	put16be(a, 1);
	put16be(a + 2, ETH_IP);
	a[4] = 6, a[5] = 4;
	put16be(a + 6, 2); /* reply */
	copy(a + 8, my_mac, 6);
	put32be(a + 14, my_ip);
	copy(a + 18, req + 22, 10); /* their MAC and IP */
	send(n, 42);
}

/* ip_frame writes Ethernet and IPv4 headers for proto with len bytes of
 * payload after them, and returns the payload. */
static u8 *ip_frame(struct netq *n, const u8 *dst_mac, u32 src, u32 dst, u8 proto, u32 len)
{
	u8 *f = (u8 *)(n->tx_buf + NET_HDR);
	eth(f, dst_mac, ETH_IP);
	u8 *ip = f + 14;
	ip[0] = 0x45, ip[1] = 0;
	put16be(ip + 2, (u16)(20 + len));
	put16be(ip + 4, 0);
	put16be(ip + 6, 0x4000);
	ip[8] = 64, ip[9] = proto;
	put16be(ip + 10, 0);
	put32be(ip + 12, src);
	put32be(ip + 16, dst);
	put16be(ip + 10, csum(ip, 20));
	return ip + 20;
}

/* l4sum is a TCP or UDP checksum with the IPv4 pseudo-header. */
static u16 l4sum(u32 src, u32 dst, u8 proto, const u8 *seg, u32 len)
{
	u32 s = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + len;
	u16 c = csum(seg, len);
	s += (u16)~c;
	while (s >> 16)
		s = (s & 0xFFFF) + (s >> 16);
	u16 r = (u16)~s;
	return r ? r : 0xFFFF;
}

/* udp_frame builds a UDP datagram in tx_buf without sending it. */
static void udp_frame(struct netq *n, const u8 *dst_mac, u32 src, u32 dst, u16 sport, u16 dport, const u8 *data, u32 len)
{
	u8 *u = ip_frame(n, dst_mac, src, dst, 17, 8 + len);
	put16be(u, sport);
	put16be(u + 2, dport);
	put16be(u + 4, (u16)(8 + len));
	put16be(u + 6, 0);
	copy(u + 8, data, len);
	put16be(u + 6, l4sum(src, dst, 17, u, 8 + len));
}

static void udp_send(struct netq *n, const u8 *dst_mac, u32 src, u32 dst, u16 sport, u16 dport, const u8 *data, u32 len)
{
	udp_frame(n, dst_mac, src, dst, sport, dport, data, len);
	send(n, 14 + 20 + 8 + len);
}

/* udp_wait returns the payload of the next UDP datagram to dport. */
static u8 *udp_wait(struct netq *n, u16 dport, u32 *len, u32 *from, u32 *slot)
{
	for (int tries = 0; tries < 256; tries++) {
		u32 l;
		u8 *r = next(n, &l, slot);
		u8 *ip = r + 14, *u = ip + 20;
		if (l >= 42 && get16be(r + 12) == ETH_IP && ip[9] == 17 && get16be(u + 2) == dport) {
			*len = get16be(u + 4) - 8;
			*from = get32be(ip + 12);
			return u + 8;
		}
		repost(n, *slot);
	}
	vfail("no UDP datagram among 256 frames");
}

/* DHCP (RFC 2131): DISCOVER, OFFER, REQUEST, ACK. Returns the router. */
static u32 dhcp(struct netq *n)
{
	static const u8 bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	u8 b[300];
	u32 offered = 0, server = 0, router = 0;
	for (int step = 0; step < 2; step++) {
		for (u32 i = 0; i < sizeof(b); i++)
			b[i] = 0;
		b[0] = 1, b[1] = 1, b[2] = 6;
		put32be(b + 4, 0x676f766d); /* xid "govm" */
		put16be(b + 10, 0x8000);    /* broadcast replies */
		copy(b + 28, my_mac, 6);
		put32be(b + 236, 0x63825363);
		u8 *o = b + 240;
		*o++ = 53, *o++ = 1, *o++ = step == 0 ? 1 : 3; /* DISCOVER, REQUEST */
		if (step == 1) {
			*o++ = 50, *o++ = 4;
			put32be(o, offered), o += 4;
			*o++ = 54, *o++ = 4;
			put32be(o, server), o += 4;
		}
		*o++ = 255;
		udp_send(n, bcast, 0, 0xFFFFFFFF, 68, 67, b, (u32)(o - b));
		u32 len, from, slot, type = 0;
		u8 *r = udp_wait(n, 68, &len, &from, &slot);
		if (len < 240 || get32be(r + 4) != 0x676f766d)
			vfail("a DHCP reply that is not ours");
		offered = get32be(r + 16);
		for (u32 i = 240; i + 1 < len && r[i] != 255;) {
			if (r[i] == 0) {
				i++;
				continue;
			}
			if (r[i] == 53)
				type = r[i + 2];
			if (r[i] == 54)
				server = get32be(r + i + 2);
			if (r[i] == 3)
				router = get32be(r + i + 2);
			i += 2 + r[i + 1];
		}
		repost(n, slot);
		if (type != (step == 0 ? 2u : 5u))
			vfail("DHCP: no OFFER, or no ACK");
	}
	my_ip = offered;
	puts("virtio-net dhcp ip=");
	puthex(offered, 8);
	puts(" router=");
	puthex(router, 8);
	puts("\n");
	return router;
}

static void udp_exchange(struct netq *n, u32 host, u16 port)
{
	static const u8 msg[] = "govmm udp";
	udp_send(n, peer_mac, my_ip, host, 40000, port, msg, sizeof(msg) - 1);
	u32 len, from, slot;
	u8 *r = udp_wait(n, 40000, &len, &from, &slot);
	puts("virtio-net udp reply from ");
	puthex(from, 8);
	puts(": ");
	for (u32 i = 0; i < len && i < 64; i++)
		putc((char)r[i]);
	puts("\n");
	repost(n, slot);
}

#define TCP_FIN 1
#define TCP_SYN 2
#define TCP_RST 4
#define TCP_PSH 8
#define TCP_ACK 16

static void tcp_send(struct netq *n, u32 host, u16 sport, u16 dport, u32 seq, u32 ack, u8 flags, const u8 *data, u32 len)
{
	u8 *t = ip_frame(n, peer_mac, my_ip, host, 6, 20 + len);
	put16be(t, sport);
	put16be(t + 2, dport);
	put32be(t + 4, seq);
	put32be(t + 8, ack);
	t[12] = 5 << 4, t[13] = flags;
	put16be(t + 14, 8192); /* window */
	put16be(t + 16, 0);
	put16be(t + 18, 0);
	copy(t + 20, data, len);
	put16be(t + 16, l4sum(my_ip, host, 6, t, 20 + len));
	send(n, 14 + 20 + 20 + len);
}

/* tcp_wait returns the next TCP segment from host:port to sport. */
static u8 *tcp_wait(struct netq *n, u32 host, u16 port, u16 sport, u32 *dlen, u32 *slot)
{
	for (int tries = 0; tries < 256; tries++) {
		u32 l;
		u8 *r = next(n, &l, slot);
		u8 *ip = r + 14, *t = ip + 20;
		if (l >= 54 && get16be(r + 12) == ETH_IP && ip[9] == 6 && get32be(ip + 12) == host && get16be(t) == port && get16be(t + 2) == sport) {
			*dlen = get16be(ip + 2) - 20 - (t[12] >> 4) * 4;
			return t;
		}
		repost(n, *slot);
	}
	vfail("no TCP segment among 256 frames");
}

/* tcp_exchange connects to host:port, sends a line and prints the line
 * that comes back: the smallest TCP client that works. */
static void tcp_exchange(struct netq *n, u32 host, u16 port)
{
	static const u8 msg[] = "govmm tcp\n";
	u16 sport = 40001;
	u32 iss = 0x10000, slot, dlen;
	tcp_send(n, host, sport, port, iss, 0, TCP_SYN, 0, 0);
	u8 *t = tcp_wait(n, host, port, sport, &dlen, &slot);
	if ((t[13] & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK) || get32be(t + 8) != iss + 1)
		vfail("TCP: no SYN-ACK");
	u32 rcv = get32be(t + 4) + 1;
	repost(n, slot);
	tcp_send(n, host, sport, port, iss + 1, rcv, TCP_ACK | TCP_PSH, msg, sizeof(msg) - 1);
	u32 snd = iss + 1 + sizeof(msg) - 1;
	u8 line[128];
	u32 got = 0;
	for (int segs = 0; segs < 32; segs++) {
		t = tcp_wait(n, host, port, sport, &dlen, &slot);
		if (t[13] & TCP_RST)
			vfail("TCP: reset by the peer");
		const u8 *d = t + (t[12] >> 4) * 4;
		if (get32be(t + 4) == rcv) {
			for (u32 i = 0; i < dlen && got < sizeof(line); i++)
				line[got++] = d[i];
			rcv += dlen;
			if (t[13] & TCP_FIN)
				rcv++;
		}
		int fin = t[13] & TCP_FIN;
		repost(n, slot);
		if (dlen || fin)
			tcp_send(n, host, sport, port, snd, rcv, TCP_ACK, 0, 0);
		if (got && (line[got - 1] == '\n' || fin))
			break;
	}
	tcp_send(n, host, sport, port, snd, rcv, TCP_RST | TCP_ACK, 0, 0);
	puts("virtio-net tcp reply: ");
	for (u32 i = 0; i < got && line[i] != '\n'; i++)
		putc((char)line[i]);
	puts("\n");
}

/* send_bench sends count UDP frames of len bytes (14 to 1514) to the
 * peer's discard port from ring 3, polling the transmit queue with
 * interrupts suppressed. */
static void send_bench(struct netq *n, u64 count, u64 len)
{
	if (len < 42 || len > 1514)
		vfail("net_len must be 42 to 1514");
	u8 *frame = (u8 *)(n->d->dma + 0x100000);
	u8 *hdr = (u8 *)(n->d->dma + 0xF000);
	for (int i = 0; i < NET_HDR; i++)
		hdr[i] = 0;
	u8 pay[1472];
	for (u32 i = 0; i < sizeof(pay); i++)
		pay[i] = (u8)i;
	u32 plen = (u32)len - 42;
	udp_frame(n, peer_mac, my_ip, peer_ip, 40002, 9, pay, plen);
	copy(frame, (u8 *)(n->tx_buf + NET_HDR), (u32)len);
	make_user_accessible(n->d->dma, n->d->dma + DMA_USER_SPAN);
	n->tx->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	vargs.op = VOP_NET_SEND;
	vargs.q = n->tx;
	vargs.hdrs = (u64)hdr;
	vargs.frame = (u64)frame;
	vargs.len = len;
	vargs.count = count;
	puts("virtio-net send start\n");
	ring3();
	if (vargs.error)
		vfail("net send: no answer from the device");
	puts("virtio-net sent n=");
	putdec(vargs.done);
	puts(" bytes=");
	putdec(vargs.done * len);
	puts("\n");
	n->tx->avail[0] = 0;
}

void net_test(struct vdev *d, u32 vqi, u64 me, u64 peer, u64 pings)
{
	struct netq n = {d, setup_queue(d, 0, vqi), setup_queue(d, 1, vqi + 1), d->dma + 0x10000, d->dma + 0xC000};
	for (u32 i = 0; i < RX_BUFS && i < n.rx->size; i++)
		post_rx(&n, i);
	driver_ok(d);
	*n.rx->notify = n.rx->index;
	for (int i = 0; i < 6; i++)
		my_mac[i] = *(volatile u8 *)(d->device + i);
	puts("virtio-net mac=");
	print_mac(my_mac);
	puts("\n");
	struct net_args *a = &net_args;
	if (a->dhcp) {
		peer = dhcp(&n);
		me = my_ip;
	}
	if (!me || !peer)
		return; /* nothing to talk to */
	my_ip = (u32)me;
	arp(&n, (u32)me, (u32)peer);
	for (u64 s = 1; s <= pings; s++)
		ping(&n, (u32)me, (u32)peer, (u16)s);
	if (a->send)
		send_bench(&n, a->send, a->send_len);
	if (a->udp_port)
		udp_exchange(&n, a->host, (u16)a->udp_port);
	if (a->tcp_port)
		tcp_exchange(&n, a->host, (u16)a->tcp_port);
	puts("virtio-net ok\n");
}
