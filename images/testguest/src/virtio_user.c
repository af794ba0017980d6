/*
 * virtio_user.c - the ring-3 half of the test guest's virtio driver: the
 * I/O loops. Ring 0 (virtio.c) set the queues up and made them, the data
 * area and the notification registers user-accessible; here requests are
 * posted, the device is notified with one MMIO write (an ioeventfd on
 * govmm: no exit to the VMM's vCPU loop), and the used ring is polled
 * with interrupts suppressed. On PVM hosts ring 3 runs natively, so this
 * is as fast as the device. Like user.c, it calls nothing outside the
 * user pages (it leaves through user_finish_ud2, in user.c).
 */
#include "virtio.h"

struct virtio_args vargs;
struct vq user_vqs[MAX_VQS];

/* Spins of the used-ring poll before giving up (tens of seconds). */
#define SPIN_LIMIT (1UL << 36)

static void barrier(void) { __asm__ volatile("" ::: "memory"); }

static u16 used_idx(struct vq *q) { return (u16)(q->used[0] >> 16); }

/* Make descriptor chain head available (2.7.13). */
static void publish(struct vq *q, u16 head)
{
	q->avail[2 + q->avail_idx % q->size] = head;
	barrier(); /* x86 keeps stores in order; the compiler must too */
	q->avail_idx++;
	q->avail[1] = q->avail_idx;
}

static void notify(struct vq *q)
{
	barrier();
	*q->notify = q->index;
}

/* Wait until the device has used everything published. */
static int wait_used(struct vq *q)
{
	u64 spins = 0;
	while (used_idx(q) != q->avail_idx) {
		__asm__ volatile("pause" ::: "memory");
		if (++spins > SPIN_LIMIT)
			return 0;
	}
	q->used_seen = q->avail_idx;
	return 1;
}

/* One blk request in slot s: header, data, status in descriptors 3s..3s+2. */
static void blk_post(struct vq *q, u64 s, u32 type, u64 sector, u64 buf, u32 len)
{
	volatile u32 *h = (volatile u32 *)(vargs.hdrs + 16 * s);
	h[0] = type;
	h[1] = 0;
	*(volatile u64 *)(h + 2) = sector;
	volatile u8 *st = (volatile u8 *)(vargs.status + s);
	*st = 0xff;
	u16 d = (u16)(3 * s);
	q->desc[d] = (struct vring_desc){(u64)h, 16, VRING_DESC_F_NEXT, (u16)(d + 1)};
	q->desc[d + 1] = (struct vring_desc){buf, len, (u16)(VRING_DESC_F_NEXT | (type == BLK_T_IN ? VRING_DESC_F_WRITE : 0)), (u16)(d + 2)};
	q->desc[d + 2] = (struct vring_desc){(u64)st, 1, VRING_DESC_F_WRITE, 0};
	publish(q, d);
}

/* blk_sector is request i's first sector: in a row from vargs.sector, or
 * with vargs.random a 4 KiB block spread over vargs.span of them by a
 * multiplicative hash (the same for the write and the read back). */
static u64 blk_sector(u64 i)
{
	if (!vargs.random)
		return vargs.sector + i * (vargs.bytes / 512);
	return vargs.sector + (i * 2654435761UL % vargs.span) * 8;
}

/* Writes take their data from the first half of the data area, reads put
 * theirs in the second half, which only the device writes: a VMM that
 * does not count the pages it wrote as dirty loses them in a diff
 * snapshot or a migration, and the verify catches it. */
static void blk_io(int write)
{
	struct vq *q = vargs.q;
	u64 half = vargs.data_size / 2;
	u64 area = write ? vargs.data : vargs.data + half;
	u64 slots = q->size / 3;
	if (slots * vargs.bytes > half)
		slots = half / vargs.bytes;
	for (u64 i = 0; i < vargs.count;) {
		u64 batch = vargs.count - i < slots ? vargs.count - i : slots;
		for (u64 s = 0; s < batch; s++) {
			u64 buf = area + s * vargs.bytes;
			u64 sector = blk_sector(i + s);
			if (write && vargs.verify) {
				u64 off = sector * 512;
				for (u64 k = 0; k < vargs.bytes; k++)
					((u8 *)buf)[k] = (u8)(PATTERN(off + k) + vargs.round);
			}
			blk_post(q, s, write ? BLK_T_OUT : BLK_T_IN, sector, buf, (u32)vargs.bytes);
		}
		notify(q);
		if (!wait_used(q)) {
			vargs.error = VERR_TIMEOUT;
			return;
		}
		for (u64 s = 0; s < batch; s++) {
			if (*(volatile u8 *)(vargs.status + s) != vargs.want_status) {
				vargs.error = VERR_STATUS;
				return;
			}
			if (!write && vargs.verify) {
				u64 off = blk_sector(i + s) * 512;
				const u8 *buf = (const u8 *)(area + s * vargs.bytes);
				for (u64 k = 0; k < vargs.bytes; k++)
					if (buf[k] != (u8)(PATTERN(off + k) + vargs.round)) {
						vargs.error = VERR_MISMATCH;
						return;
					}
			}
		}
		i += batch;
		vargs.done = i;
	}
}

static void loop_putc(char c)
{
	volatile u8 *uart = (volatile u8 *)(u64)UART_MMIO;
	for (int i = 0; i < 1000 && !(uart[UART_LSR] & LSR_THRE); i++)
		;
	uart[UART_THR] = (u8)c;
}

/* blk_loop writes and reads back the same blocks round after round, the
 * pattern moved on by one each round, so that a read that returns the
 * round before's data (a VMM that lost a write, or the data it read into
 * guest RAM, across a snapshot or a migration) is caught. The verify
 * of a batch comes after all its reads are done: a VMM that pauses in
 * between must have kept what it read. vargs.round is the round under
 * way, then the last one done. */
static void blk_loop(void)
{
	for (u64 r = 1; r <= vargs.rounds; r++) {
		vargs.round = r;
		blk_io(1);
		if (vargs.error)
			return;
		blk_io(0);
		if (vargs.error)
			return;
		if (vargs.progress)
			loop_putc('V');
	}
}

/* Send count copies of the frame on the transmit queue (5.1.6.2): each
 * chain is the 12-byte virtio_net_hdr (zeros: no offloads) and the frame. */
static void net_send(void)
{
	struct vq *q = vargs.q;
	u64 slots = q->size / 2;
	for (u64 i = 0; i < vargs.count;) {
		u64 batch = vargs.count - i < slots ? vargs.count - i : slots;
		for (u64 s = 0; s < batch; s++) {
			u16 d = (u16)(2 * s);
			q->desc[d] = (struct vring_desc){vargs.hdrs, 12, VRING_DESC_F_NEXT, (u16)(d + 1)};
			q->desc[d + 1] = (struct vring_desc){vargs.frame, (u32)vargs.len, 0, 0};
			publish(q, d);
		}
		notify(q);
		if (!wait_used(q)) {
			vargs.error = VERR_TIMEOUT;
			return;
		}
		i += batch;
		vargs.done = i;
	}
}

/* Wait for one received frame: ring 0 posted receive buffers; the used
 * element names the buffer (its descriptor) and its length. */
static void net_recv(void)
{
	struct vq *q = vargs.q;
	u64 spins = 0;
	while (used_idx(q) == q->used_seen) {
		__asm__ volatile("pause" ::: "memory");
		if (++spins > SPIN_LIMIT) {
			vargs.error = VERR_TIMEOUT;
			return;
		}
	}
	u16 slot = q->used_seen % q->size;
	vargs.frame = q->desc[q->used[1 + 2 * slot]].addr;
	vargs.len = q->used[2 + 2 * slot];
	q->used_seen++;
	vargs.done = 1;
}

void virtio_user_main(void)
{
	vargs.error = 0;
	vargs.done = 0;
	switch (vargs.op) {
	case VOP_BLK_WRITE:
		blk_io(1);
		break;
	case VOP_BLK_READ:
		blk_io(0);
		break;
	case VOP_BLK_LOOP:
		blk_loop();
		break;
	case VOP_NET_SEND:
		net_send();
		break;
	case VOP_NET_RECV:
		net_recv();
		break;
	}
	__asm__ volatile("jmp user_finish_ud2");
	__builtin_unreachable();
}
