/*
 * virtio.h - what the ring-0 (virtio.c) and ring-3 (virtio_user.c) halves
 * of the test guest's virtio driver share: the split virtqueue layout
 * (virtio 1.2, 2.7) and the work ring 0 hands ring 3.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

#define VQ_SIZE 64 /* entries this driver uses (at most the device's) */

/* Descriptor flags (2.7.5) and ring flags (2.7.6, 2.7.8). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1

struct vring_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};

/* One queue as the driver keeps it. Addresses are guest-physical, which
 * this guest's identity map makes virtual too. */
struct vq {
	volatile struct vring_desc *desc;
	volatile u16 *avail; /* flags, idx, ring[VQ_SIZE], used_event */
	volatile u32 *used;  /* flags|idx<<16, then (id, len) pairs */
	volatile u16 *notify;
	u16 index;    /* the queue's number, written to notify */
	u16 size;     /* entries used (VQ_SIZE or the device's maximum) */
	u16 avail_idx;
	u16 used_seen;
};

/* virtio-blk request types and status (5.2.6). */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_S_OK 0
#define BLK_S_IOERR 1

/* Ring 3's work (vargs.op). */
#define VOP_BLK_WRITE 1  /* write the pattern to count requests of bytes each */
#define VOP_BLK_READ 2   /* read them back; verify the pattern when verify is set */
#define VOP_NET_SEND 3   /* send count copies of frame (len bytes) on queue 1 */
#define VOP_NET_RECV 4   /* wait for a received frame on queue 0 */
#define VOP_BLK_LOOP 5   /* rounds of VOP_BLK_WRITE and VOP_BLK_READ, verified, the pattern moved on by the round */

/* Errors ring 3 reports in vargs.error. */
#define VERR_TIMEOUT 1   /* the device did not answer */
#define VERR_STATUS 2    /* a request's status was not the one expected */
#define VERR_MISMATCH 3  /* read data differ from the pattern */

/* The data pattern: a function of the byte's offset on the disk, which the
 * host test computes too (testguest.VirtioPattern). Round r of
 * VOP_BLK_LOOP writes PATTERN(off) + r. */
#define PATTERN(off) ((u8)(((off) >> 9) * 7 + (off) * 13 + 0x5a))

struct virtio_args {
	u64 op;
	struct vq *q;
	u64 hdrs;       /* 16-byte request headers, one per slot */
	u64 status;     /* status bytes, one per slot */
	u64 data;       /* data area */
	u64 data_size;
	u64 sector;     /* first sector */
	u64 count;      /* requests (or frames) */
	u64 bytes;      /* bytes per request (a multiple of 512) */
	u64 verify;
	u32 want_status;
	u32 error;      /* VERR_*, 0 when all went well */
	u64 done;       /* requests completed */
	u64 len;        /* VOP_NET_*: frame length (in or out) */
	u64 frame;      /* VOP_NET_*: the frame's buffer */
	u64 random;     /* blk: sectors spread over the disk instead of in a row */
	u64 span;       /* blk, random: 4 KiB blocks to spread over */
	u64 round;      /* blk: added to the pattern (VOP_BLK_LOOP's round) */
	u64 rounds;     /* VOP_BLK_LOOP: rounds to run */
	u64 progress;   /* VOP_BLK_LOOP: print 'V' after each round (through the UART's MMIO alias) */
};

extern struct virtio_args vargs;
#define MAX_VQS 16
extern struct vq user_vqs[MAX_VQS]; /* in user pages: ring 3 uses them */
void virtio_user_main(void) __attribute__((noreturn));

#endif
