/*
 * virtio.c - mode=virtio: a small virtio-pci driver (virtio 1.2, 4.1 and
 * 3.1.1) for the virtio devices on PCI bus 0: virtio-blk, virtio-rng and
 * virtio-net. Ring 0 finds the devices through configuration mechanism #1
 * (so it runs on govmm and on QEMU's q35 alike), places BARs the firmware
 * left unplaced or above 4 GiB, walks the capabilities, negotiates
 * features, sets up MSI-X and the queues, and takes each device's first
 * answer by interrupt. The bulk I/O then runs in ring 3 (virtio_user.c)
 * with interrupts suppressed and the used rings polled.
 *
 * Command line: blk_sector=<first sector> blk_n=<requests>
 * blk_bytes=<bytes each, a multiple of 512> discard=<sector>,
 * discard_n=<sectors> (when the device offers DISCARD); net_me=<IPv4
 * hex> net_peer=<IPv4 hex> pings=<n>, or net_dhcp=1; net_host=<IPv4 hex>
 * udp_port=<n> tcp_port=<n>, net_send=<frames> net_len=<bytes> (virtio_net.c);
 * for benchmarks blk_verify=0 (no pattern) and blk_random=1 (4 KiB
 * requests spread over the disk); blk_loop=<rounds> then writes and
 * reads back the same requests round after round, the pattern moved on
 * by the round, printing 'V' after each. Output, a line each (the tests and
 * make bench match them; "virtio-blk write start" and "read start" come
 * right before the ring-3 loops):
 *
 *   virtio 00:DD.0 type=<n> features=<hex> queues=<n>
 *   virtio-blk capacity=<sectors> id=<GET_ID string>      (by interrupt)
 *   virtio-blk wrote n=<n> bytes=<n>; virtio-blk flush ok;
 *   virtio-blk read ok n=<n>; virtio-blk ro: write refused;
 *   virtio-blk discard ok; virtio-blk loop start, V..., virtio-blk loop ok rounds=<n>,
 *   virtio-blk loop flush ok (interrupt)
 *   virtio-rng ok bytes=<n>
 *   virtio-net mac=<mac> sent arp; virtio-net got arp reply from <ip>;
 *   virtio-net ping reply
 *   virtio ok devices=<n>
 */
#include "kernel.h"
#include "virtio.h"
#include "virtio_dev.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define VIRTIO_VENDOR 0x1af4
#define CAP_VENDOR 0x09
#define CAP_MSIX 0x11

/* virtio_pci_cap cfg_type (4.1.4). */
#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR 3
#define CFG_DEVICE 4

/* Common configuration (4.1.4.3). */
#define C_DFSELECT 0x00
#define C_DF 0x04
#define C_GFSELECT 0x08
#define C_GF 0x0C
#define C_MSIX 0x10
#define C_NUMQ 0x12
#define C_STATUS 0x14
#define C_QSELECT 0x16
#define C_QSIZE 0x18
#define C_QMSIX 0x1A
#define C_QENABLE 0x1C
#define C_QNOFF 0x1E
#define C_QDESC 0x20
#define C_QDRIVER 0x28
#define C_QDEVICE 0x30

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#define F_VERSION_1 (1UL << 32)
#define BLK_F_RO (1UL << 5)
#define BLK_F_FLUSH (1UL << 9)
#define BLK_F_DISCARD (1UL << 13)
#define NET_F_MAC (1UL << 5)
#define NO_VECTOR 0xFFFF

#define TYPE_NET 1
#define TYPE_BLK 2
#define TYPE_RNG 4

/* Where this guest puts BARs the firmware did not (govmm places 64-bit
 * BARs above 4 GiB, which this guest does not map): inside govmm's 32-bit
 * window, past the test device's; and its DMA memory, from 16 MiB. */
#define MY_BARS 0xC4000000UL
#define VEC_BASE 0x60 /* device d: config 0x60+4d, queue q 0x61+4d+q */

static inline void out32(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 in32(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static u32 cfg32(u32 dev, u32 reg)
{
	out32(PCI_CONFIG_ADDRESS, 0x80000000u | dev << 11 | (reg & 0xFC));
	return in32(PCI_CONFIG_DATA);
}
static void cfg32w(u32 dev, u32 reg, u32 v)
{
	out32(PCI_CONFIG_ADDRESS, 0x80000000u | dev << 11 | (reg & 0xFC));
	out32(PCI_CONFIG_DATA, v);
}
static u32 cfg8(u32 dev, u32 reg) { return cfg32(dev, reg) >> (8 * (reg & 3)) & 0xFF; }

void vfail(const char *what)
{
	puts("CHECK FAILED: virtio: ");
	puts(what);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}


static volatile u32 irqs[256];

static int virtio_irq(u64 vector)
{
	if (vector == 0xFF)
		return 1;
	if (vector < VEC_BASE || vector >= VEC_BASE + 64)
		return 0;
	irqs[vector]++;
	lapic_eoi();
	return 1;
}

static void wait_irq(u32 vector, u32 n)
{
	for (u64 i = 0; irqs[vector] < n; i++) {
		if (i > 100000000UL)
			vfail("no interrupt from the device");
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	}
}

u32 virtio_irq_count(u32 vector) { return irqs[vector]; }
void virtio_wait_irq(u32 vector, u32 n) { wait_irq(vector, n); }

#define R8(a) (*(volatile u8 *)(a))
#define R16(a) (*(volatile u16 *)(a))
#define R32(a) (*(volatile u32 *)(a))

/* bar_addr returns BAR i, placing it at *next when it is unplaced or
 * above 4 GiB. Decoding is off while it is sized and moved. */
static u64 bar_addr(u32 dev, u32 i, u64 *next)
{
	u32 reg = 0x10 + 4 * i, lo = cfg32(dev, reg), hi = 0;
	int is64 = (lo & 7) == 4;
	if (is64)
		hi = cfg32(dev, reg + 4);
	u64 a = ((u64)hi << 32 | lo) & ~0xFUL;
	if (a && a + 0x100000 < 0x100000000UL)
		return a;
	u32 cmd = cfg32(dev, 0x04);
	cfg32w(dev, 0x04, cmd & ~0x7u);
	cfg32w(dev, reg, 0xFFFFFFFF);
	u64 size = ~(u64)(cfg32(dev, reg) & ~0xFu) + 1;
	size &= 0xFFFFFFFFUL;
	u64 at = (*next + size - 1) & ~(size - 1);
	*next = at + size;
	cfg32w(dev, reg, (u32)at);
	if (is64)
		cfg32w(dev, reg + 4, 0);
	cfg32w(dev, 0x04, cmd);
	return at;
}

static void msix_vector(u64 table, u32 v, u32 vector)
{
	volatile u32 *e = (volatile u32 *)(table + 16 * v);
	e[0] = 0xFEE00000u | lapic_id() << 12;
	e[1] = 0;
	e[2] = vector;
	e[3] = 0;
}

/* setup brings device dev up to FEATURES_OK with the features in want
 * that it offers, and MSI-X on; returns in d. */
static void setup(u32 dev, u32 type, struct vdev *d, u64 want, u32 index, u64 *next)
{
	d->slot = dev;
	d->type = type;
	d->dma = DMA_BASE + index * DMA_PER_DEV;
	d->vec0 = VEC_BASE + 4 * index;
	u64 bars[6] = {0};
	u32 msix = 0;
	cfg32w(dev, 0x04, 0x6); /* memory decoding and bus mastering */
	for (u32 p = cfg8(dev, 0x34), n = 0; p && n < 48; p = cfg8(dev, p + 1), n++) {
		u32 id = cfg8(dev, p);
		if (id == CAP_MSIX)
			msix = p;
		if (id != CAP_VENDOR)
			continue;
		u32 t = cfg8(dev, p + 3), bar = cfg8(dev, p + 4), off = cfg32(dev, p + 8);
		if (bar > 5)
			continue;
		if (!bars[bar])
			bars[bar] = bar_addr(dev, bar, next);
		u64 at = bars[bar] + off;
		if (t == CFG_COMMON && !d->common)
			d->common = at;
		else if (t == CFG_ISR && !d->isr)
			d->isr = at;
		else if (t == CFG_DEVICE && !d->device)
			d->device = at;
		else if (t == CFG_NOTIFY && !d->notify_base) {
			d->notify_base = at;
			d->notify_mult = cfg32(dev, p + 16);
		}
	}
	if (!d->common || !d->notify_base || !d->isr)
		vfail("a device lacks the common, ISR or notify structure");
	if (!msix)
		vfail("a device has no MSI-X capability");
	u32 tab = cfg32(dev, msix + 4);
	if (!bars[tab & 7])
		bars[tab & 7] = bar_addr(dev, tab & 7, next);
	u64 table = bars[tab & 7] + (tab & ~7u);
	/* Ring 3 writes the notification registers. */
	make_user_accessible(d->notify_base, d->notify_base + 0x1000);

	u64 c = d->common;
	R8(c + C_STATUS) = 0; /* reset; done when it reads back 0 */
	while (R8(c + C_STATUS))
		;
	R8(c + C_STATUS) = S_ACK;
	R8(c + C_STATUS) = S_ACK | S_DRIVER;
	R32(c + C_DFSELECT) = 0;
	u64 f = R32(c + C_DF);
	R32(c + C_DFSELECT) = 1;
	f |= (u64)R32(c + C_DF) << 32;
	if (!(f & F_VERSION_1))
		vfail("a device does not offer VIRTIO_F_VERSION_1");
	d->features = f & (want | F_VERSION_1);
	R32(c + C_GFSELECT) = 0;
	R32(c + C_GF) = (u32)d->features;
	R32(c + C_GFSELECT) = 1;
	R32(c + C_GF) = (u32)(d->features >> 32);
	R8(c + C_STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK;
	if (!(R8(c + C_STATUS) & S_FEATURES_OK))
		vfail("the device refused our features");
	d->nq = R16(c + C_NUMQ);

	u32 nvec = (cfg32(dev, msix) >> 16 & 0x7FF) + 1;
	for (u32 v = 0; v < nvec && v < 4; v++)
		msix_vector(table, v, d->vec0 + v);
	cfg32w(dev, msix, (cfg32(dev, msix) & 0xFFFF) | (u32)((cfg32(dev, msix) >> 16 | 0x8000) << 16));
	R16(c + C_MSIX) = 0;
	if (R16(c + C_MSIX) != 0)
		vfail("the configuration vector did not map");
	puts("virtio 00:");
	puthex(dev, 2);
	puts(".0 type=");
	putdec(type);
	puts(" features=");
	puthex(d->features, 16);
	puts(" queues=");
	putdec(d->nq);
	puts("\n");
}

/* setup_queue lays queue q out in the device's DMA memory (a 12 KiB
 * block per queue) and enables it with MSI-X vector 1+q; returns it in
 * user memory for ring 3. */
struct vq *setup_queue(struct vdev *d, u32 q, u32 vqi)
{
	u64 c = d->common;
	u64 base = d->dma + 0x3000 * q;
	R16(c + C_QSELECT) = (u16)q;
	u16 max = R16(c + C_QSIZE);
	if (max == 0)
		vfail("a queue the device names has size 0");
	u16 size = max < VQ_SIZE ? max : VQ_SIZE;
	struct vq *v = &user_vqs[vqi];
	v->desc = (volatile struct vring_desc *)base;
	v->avail = (volatile u16 *)(base + 0x1000);
	v->used = (volatile u32 *)(base + 0x2000);
	v->size = size;
	v->index = (u16)q;
	v->avail_idx = v->used_seen = 0;
	v->notify = (volatile u16 *)(d->notify_base + (u64)R16(c + C_QNOFF) * d->notify_mult);
	R16(c + C_QSIZE) = size;
	R16(c + C_QMSIX) = (u16)(1 + q);
	if (R16(c + C_QMSIX) != 1 + q)
		vfail("a queue vector did not map");
	R32(c + C_QDESC) = (u32)base;
	R32(c + C_QDESC + 4) = 0;
	R32(c + C_QDRIVER) = (u32)(base + 0x1000);
	R32(c + C_QDRIVER + 4) = 0;
	R32(c + C_QDEVICE) = (u32)(base + 0x2000);
	R32(c + C_QDEVICE + 4) = 0;
	R16(c + C_QENABLE) = 1;
	return v;
}

void driver_ok(struct vdev *d)
{
	R8(d->common + C_STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
	if (R8(d->common + C_STATUS) & S_NEEDS_RESET)
		vfail("the device needs a reset right after DRIVER_OK");
}

/* post_one makes one chain of up to 3 buffers available (ring 0) and
 * waits for its interrupt; returns the used length. */
u32 post_wait(struct vdev *d, struct vq *q, u32 qn, u64 *addr, u32 *len, u16 *flags, u32 n)
{
	u16 base = (u16)(q->avail_idx % q->size);
	for (u32 i = 0; i < n; i++)
		q->desc[base + i] = (struct vring_desc){addr[i], len[i], (u16)(flags[i] | (i + 1 < n ? VRING_DESC_F_NEXT : 0)), (u16)(base + i + 1)};
	u32 before = irqs[d->vec0 + 1 + qn];
	q->avail[2 + q->avail_idx % q->size] = base;
	__asm__ volatile("" ::: "memory");
	q->avail_idx++;
	q->avail[1] = q->avail_idx;
	*q->notify = q->index;
	wait_irq(d->vec0 + 1 + qn, before + 1);
	u16 slot = q->used_seen % q->size;
	u32 got = q->used[2 + 2 * slot];
	q->used_seen++;
	if ((u16)(q->used[0] >> 16) != q->used_seen)
		vfail("the used index did not move by one");
	return got;
}

/* mark writes a boot-timer mark (govmm logs the time): not under PVH,
 * where port 0xf5 may be QEMU's isa-debug-exit. */
static void mark(u8 v)
{
	if (uargs.use_mmio)
		pio_write(BOOT_MARK_PORT, v);
}

/* ring3 runs vargs in ring 3 (virtio_user.c). */
void ring3(void) { user_call((u64)virtio_user_main, (u64)user_stack + USER_STACK_SIZE - 8); }

static u64 blk_verify = 1, blk_random; /* blk_verify=0 for benchmarks: no pattern */
static u64 blk_loop_rounds; /* blk_loop=<rounds>: VOP_BLK_LOOP after the read back */

static void blk(struct vdev *d, u32 vqi, u64 sector, u64 n, u64 bytes, u64 disc, u64 disc_n)
{
	struct vq *q = setup_queue(d, 0, vqi);
	driver_ok(d);
	u64 cap = R32(d->device) | (u64)R32(d->device + 4) << 32;
	/* GET_ID by interrupt. */
	volatile u32 *h = (volatile u32 *)(d->dma + 0xC000);
	u8 *id = (u8 *)(d->dma + 0xC100);
	volatile u8 *st = (volatile u8 *)(d->dma + 0xC200);
	h[0] = BLK_T_GET_ID;
	h[1] = h[2] = h[3] = 0;
	*st = 0xff;
	u64 a[3] = {(u64)h, (u64)id, (u64)st};
	u32 l[3] = {16, 20, 1};
	u16 fl[3] = {0, VRING_DESC_F_WRITE, VRING_DESC_F_WRITE};
	u32 used = post_wait(d, q, 0, a, l, fl, 3);
	if (*st != BLK_S_OK || used < 2)
		vfail("GET_ID failed");
	puts("virtio-blk capacity=");
	putdec(cap);
	puts(" id=");
	for (int i = 0; i < 20 && id[i]; i++)
		putc((char)id[i]);
	puts("\n");

	/* The bulk of it in ring 3, polled. */
	q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	make_user_accessible(d->dma, d->dma + DMA_PER_DEV);
	vargs.q = q;
	vargs.hdrs = d->dma + 0xD000;
	vargs.status = d->dma + 0xE000;
	vargs.data = d->dma + 0x10000;
	vargs.data_size = DMA_PER_DEV - 0x10000;
	vargs.sector = sector;
	vargs.count = n;
	vargs.bytes = bytes;
	vargs.verify = blk_verify;
	vargs.random = blk_random;
	vargs.span = (cap - sector) / 8;
	if (blk_random && (bytes != 4096 || !vargs.span))
		vfail("blk_random=1 takes blk_bytes=4096 and a disk past blk_sector");
	if (!blk_random && sector + n * (bytes / 512) > cap)
		vfail("blk_sector, blk_n and blk_bytes reach past the disk");
	if (d->features & BLK_F_RO) {
		vargs.op = VOP_BLK_WRITE;
		vargs.count = 1;
		vargs.want_status = BLK_S_IOERR;
		ring3();
		if (vargs.error)
			vfail("a write to a read-only disk did not fail with IOERR");
		puts("virtio-blk ro: write refused\n");
	} else {
		vargs.op = VOP_BLK_WRITE;
		vargs.want_status = BLK_S_OK;
		puts("virtio-blk write start\n");
		mark(0x70);
		ring3();
		mark(0x71);
		if (vargs.error)
			vfail(vargs.error == VERR_TIMEOUT ? "blk write: no answer" : "blk write: a status was not OK");
		puts("virtio-blk wrote n=");
		putdec(vargs.done);
		puts(" bytes=");
		putdec(vargs.done * bytes);
		puts("\n");
		if (d->features & BLK_F_FLUSH) {
			h[0] = BLK_T_FLUSH;
			*st = 0xff;
			q->avail[0] = 0;
			u64 fa[2] = {(u64)h, (u64)st};
			u32 flen[2] = {16, 1};
			u16 ff[2] = {0, VRING_DESC_F_WRITE};
			post_wait(d, q, 0, fa, flen, ff, 2);
			if (*st != BLK_S_OK)
				vfail("FLUSH failed");
			puts("virtio-blk flush ok\n");
			q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
		}
	}
	vargs.op = VOP_BLK_READ;
	vargs.count = n;
	vargs.want_status = BLK_S_OK;
	vargs.verify = blk_verify && !(d->features & BLK_F_RO);
	puts("virtio-blk read start\n");
	mark(0x72);
	ring3();
	mark(0x73);
	if (vargs.error)
		vfail(vargs.error == VERR_MISMATCH ? "blk read: the data differ from what was written" : "blk read failed");
	puts("virtio-blk read ok n=");
	putdec(vargs.done);
	puts("\n");
	if (blk_loop_rounds && !(d->features & BLK_F_RO)) {
		/* Rounds of writes and verified reads in ring 3 (virtio_user.c),
		 * for a snapshot or a migration to happen under. */
		vargs.op = VOP_BLK_LOOP;
		vargs.count = n;
		vargs.verify = 1;
		vargs.rounds = blk_loop_rounds;
		vargs.progress = uargs.use_mmio;
		puts("virtio-blk loop start\n");
		ring3();
		puts("\n");
		if (vargs.error) {
			puts("virtio-blk loop: round ");
			putdec(vargs.round);
			puts(": ");
			vfail(vargs.error == VERR_MISMATCH ? "blk loop: the data read differ from the round's" : vargs.error == VERR_TIMEOUT ? "blk loop: no answer" : "blk loop: a status was not OK");
		}
		puts("virtio-blk loop ok rounds=");
		putdec(vargs.round);
		puts("\n");
		vargs.round = 0;
		if (d->features & BLK_F_FLUSH) {
			/* One request answered by interrupt: after a restore or a
			 * migration, the device's MSI-X vector reaches this CPU. */
			h[0] = BLK_T_FLUSH;
			*st = 0xff;
			q->avail[0] = 0;
			u64 fa[2] = {(u64)h, (u64)st};
			u32 flen[2] = {16, 1};
			u16 ff[2] = {0, VRING_DESC_F_WRITE};
			post_wait(d, q, 0, fa, flen, ff, 2);
			if (*st != BLK_S_OK)
				vfail("FLUSH after the loop failed");
			puts("virtio-blk loop flush ok (interrupt)\n");
			q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
		}
	}
	if ((d->features & BLK_F_DISCARD) && disc_n) {
		volatile u64 *seg = (volatile u64 *)(d->dma + 0xC300);
		seg[0] = disc;
		seg[1] = disc_n; /* num_sectors, flags 0 */
		h[0] = BLK_T_DISCARD;
		*st = 0xff;
		q->avail[0] = 0;
		u64 da[3] = {(u64)h, (u64)seg, (u64)st};
		u32 dl[3] = {16, 16, 1};
		u16 df[3] = {0, 0, VRING_DESC_F_WRITE};
		post_wait(d, q, 0, da, dl, df, 3);
		if (*st != BLK_S_OK)
			vfail("DISCARD failed");
		puts("virtio-blk discard ok\n");
	}
}

static void rng(struct vdev *d, u32 vqi)
{
	struct vq *q = setup_queue(d, 0, vqi);
	driver_ok(d);
	u8 *buf = (u8 *)(d->dma + 0xC000);
	for (int i = 0; i < 64; i++)
		buf[i] = 0;
	u64 a[1] = {(u64)buf};
	u32 l[1] = {64};
	u16 f[1] = {VRING_DESC_F_WRITE};
	u32 got = post_wait(d, q, 0, a, l, f, 1);
	u32 nonzero = 0;
	for (u32 i = 0; i < got && i < 64; i++)
		nonzero |= buf[i];
	if (!got || !nonzero)
		vfail("virtio-rng gave no entropy");
	puts("virtio-rng ok bytes=");
	putdec(got);
	puts("\n");
}


void mode_virtio(u64 (*arg)(const char *key, int base, u64 def))
{
	u64 sector = arg("blk_sector", 10, 0), n = arg("blk_n", 10, 16), bytes = arg("blk_bytes", 10, 4096);
	u64 disc = arg("discard", 10, 0), disc_n = arg("discard_n", 10, 0);
	u64 me = arg("net_me", 16, 0), peer = arg("net_peer", 16, 0), pings = arg("pings", 10, 1);
	net_args.dhcp = arg("net_dhcp", 10, 0);
	net_args.host = arg("net_host", 16, 0);
	net_args.udp_port = arg("udp_port", 10, 0);
	net_args.tcp_port = arg("tcp_port", 10, 0);
	net_args.send = arg("net_send", 10, 0);
	net_args.send_len = arg("net_len", 10, 1514);
	blk_verify = arg("blk_verify", 10, 1);
	blk_random = arg("blk_random", 10, 0);
	blk_loop_rounds = arg("blk_loop", 10, 0);
	pio_write(0x21, 0xff);
	pio_write(0xa1, 0xff);
	lapic_enable();
	irq_handler = virtio_irq;
	struct vdev devs[8];
	u32 count = 0, vqi = 0;
	u64 next = MY_BARS;
	for (u32 dev = 0; dev < 32 && count < 8; dev++) {
		u32 id = cfg32(dev, 0);
		if ((id & 0xFFFF) != VIRTIO_VENDOR)
			continue;
		u32 did = id >> 16, type;
		if (did >= 0x1040 && did <= 0x107F)
			type = did - 0x1040;
		else if (did >= 0x1000 && did <= 0x103F)
			type = cfg32(dev, 0x2C) >> 16; /* transitional: the subsystem ID */
		else
			continue;
		struct vdev *d = &devs[count];
		for (u32 i = 0; i < sizeof(*d); i++)
			((u8 *)d)[i] = 0;
		u64 want = 0;
		if (type == TYPE_BLK)
			want = BLK_F_RO | BLK_F_FLUSH | BLK_F_DISCARD;
		if (type == TYPE_NET)
			want = NET_F_MAC;
		if (type != TYPE_BLK && type != TYPE_RNG && type != TYPE_NET)
			continue;
		setup(dev, type, d, want, count, &next);
		if (type == TYPE_BLK)
			blk(d, vqi++, sector, n, bytes, disc, disc_n);
		else if (type == TYPE_RNG)
			rng(d, vqi++);
		else {
			net_test(d, vqi, me, peer, pings);
			vqi += 2;
		}
		count++;
	}
	if (!count)
		vfail("no virtio device on bus 0");
	puts("virtio ok devices=");
	putdec(count);
	puts("\n");
	exit(EXIT_OK);
}
