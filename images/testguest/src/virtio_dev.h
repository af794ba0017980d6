/*
 * virtio_dev.h - what the ring-0 files of the virtio driver share
 * (virtio.c: transport and queues; virtio_net.c: the network test).
 */
#ifndef VIRTIO_DEV_H
#define VIRTIO_DEV_H

#include "kernel.h"
#include "virtio.h"

/* Each device's DMA memory: rings, buffers, data; from 16 MiB. */
#define DMA_BASE 0x1000000UL
#define DMA_PER_DEV 0x400000UL
#define DMA_USER_SPAN DMA_PER_DEV /* made user-accessible for ring 3 */

struct vdev {
	u32 slot, type, nq;
	u64 common, isr, device, notify_base;
	u32 notify_mult;
	u64 features;
	u64 dma; /* this device's DMA memory (DMA_PER_DEV bytes) */
	u32 vec0;
};

void vfail(const char *what) __attribute__((noreturn));
struct vq *setup_queue(struct vdev *d, u32 q, u32 vqi);
void driver_ok(struct vdev *d);
/* post_wait posts one chain of n buffers on queue qn, notifies, waits for
 * its interrupt and returns the used length. */
u32 post_wait(struct vdev *d, struct vq *q, u32 qn, u64 *addr, u32 *len, u16 *flags, u32 n);
void ring3(void);
void net_test(struct vdev *d, u32 vqi, u64 me, u64 peer, u64 pings);

/* What the command line asks of the network test (mode_virtio fills it):
 * net_dhcp=1 (get an address by DHCP; the router is the peer),
 * net_host=<hex IPv4> with udp_port=<n> and tcp_port=<n> (talk to it). */
struct net_args {
	u64 dhcp, host, udp_port, tcp_port;
	u64 send, send_len; /* net_send frames of net_len bytes to the peer's port 9, from ring 3 */
};
extern struct net_args net_args;
u32 virtio_irq_count(u32 vector);
void virtio_wait_irq(u32 vector, u32 n); /* until vector has come n times */

#endif
