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
		u8 *r = recv(n, &len, &slot);
		int ok = len >= 42 && get16be(r + 12) == ETH_ARP && get16be(r + 20) == 2 && get32be(r + 28) == peer;
		if (ok)
			copy(peer_mac, r + 22, 6);
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
		u8 *r = recv(n, &len, &slot);
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
	if (!me || !peer)
		return; /* nothing to talk to */
	arp(&n, (u32)me, (u32)peer);
	for (u64 s = 1; s <= pings; s++)
		ping(&n, (u32)me, (u32)peer, (u16)s);
	puts("virtio-net ok\n");
}
