/*
 * virtio.S - lesson 6: a virtio request, the way a driver makes one.
 *
 * Lessons 1-5 talked to devices one byte at a time: every IN and OUT was
 * a VM exit. A disk or a network card moving megabytes cannot work that
 * way. virtio (the OASIS "Virtual I/O Device" standard; the sections cited
 * here are those of virtio 1.2) is the contract most VMMs and guests use
 * instead: the guest puts buffers in a *virtqueue*, rings in RAM that both
 * sides read, and tells the device with one write; the device (a thread
 * of govmm) fills the buffers and says which it used, again in RAM. A
 * request costs a notification, not an exit per byte.
 *
 * This program is a tiny virtio driver for govmm's entropy device
 * (virtio-rng: "give me random bytes"; run govmm with -rng on). It
 *
 *   1. switches to 32-bit protected mode (lesson 2), to reach the
 *      device's registers, which live far above 1 MiB;
 *   2. scans PCI bus 0 through configuration mechanism #1 (ports 0xCF8
 *      and 0xCFC) for the device's vendor and device IDs;
 *   3. walks its PCI capability list for the virtio structures: where in
 *      which BAR the common configuration, the notification doorbells and
 *      the ISR lie;
 *   4. places that BAR where 32-bit code can reach it and turns on the
 *      device's memory decoding, as firmware would;
 *   5. does the status dance of virtio 3.1.1: reset, ACKNOWLEDGE, DRIVER,
 *      feature negotiation (VERSION_1 only), FEATURES_OK;
 *   6. sets up one split virtqueue of four entries (virtio 2.7) and sets
 *      DRIVER_OK;
 *   7. makes one request: one buffer of 16 bytes the device may write,
 *      put on the available ring, then a notification;
 *   8. waits in a loop, reading only RAM, until the used ring says the
 *      device is done; prints how many bytes it wrote (not the bytes:
 *      they differ each run), resets the device and ends the VM.
 *
 * Which of these are VM exits? The port accesses of steps 2-4 (one OUT
 * to 0xCF8 and one IN or OUT at 0xCFC per register); every access to the
 * BAR in steps 5, 6 and 8 (KVM_EXIT_MMIO: no RAM is there, so KVM hands
 * the access to govmm, whose virtio-pci model answers). Not the filling
 * of the descriptor and the rings for the request: stores to RAM. Not the notification
 * either, on hosts with ioeventfds: govmm asked KVM to turn a 16-bit write
 * to that doorbell address into a signal on a file descriptor, which the
 * device's thread waits on, and KVM resumes the guest at once. Not the
 * wait, which reads RAM. The golden trace shows all this.
 *
 * Walkthrough: docs/lessons/6-virtio.md.
 */
#include "lesson.h"

#define CODE32 0x08
#define DATA32 0x10

/* PCI configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): write
 * enable bit | bus << 16 | device << 11 | function << 8 | register to
 * CONFIG_ADDRESS, then read or write the dword at CONFIG_DATA. */
#define PCI_ADDRESS   0xcf8
#define PCI_DATA      0xcfc
#define PCI_ENABLE    0x80000000
#define PCI_ID        0x00	/* vendor ID (low 16 bits), device ID */
#define PCI_COMMAND   0x04	/* command (low 16 bits), status */
#define PCI_BAR0      0x10
#define PCI_CAP_PTR   0x34	/* the first capability's offset */
#define CMD_MEMORY    0x0002	/* decode the memory BARs */
#define CMD_MASTER    0x0004	/* the device may read and write RAM (DMA) */
#define STATUS_CAPS   0x0010	/* status bit 4: there is a capability list */

/* virtio over PCI (4.1.2): vendor 0x1AF4, device 0x1040 + the device
 * type; the entropy device is type 4 (5.4), so 0x1044. */
#define VIRTIO_RNG_ID 0x10441af4

/* A virtio structure capability (4.1.4): a vendor-specific capability
 * (ID 9) whose bytes are cap_vndr, cap_next, cap_len, cfg_type, then bar
 * at +4, offset at +8, length at +12; the notification one adds
 * notify_off_multiplier at +16 (4.1.4.4). */
#define CAP_VENDOR    0x09
#define CAP_BAR       4
#define CAP_OFFSET    8
#define CAP_MULT      16
#define CFG_COMMON    1
#define CFG_NOTIFY    2
#define CFG_ISR       3

/* Where this program puts the BAR: the start of govmm's 32-bit PCI
 * window (boot/layout.go; the ACPI tables tell an OS the same). */
#define BAR_PLACE     0xc0000000

/* The common configuration structure (4.1.4.3), offsets in it. */
#define DEVICE_FEATURE_SELECT 0x00
#define DEVICE_FEATURE        0x04
#define DRIVER_FEATURE_SELECT 0x08
#define DRIVER_FEATURE        0x0c
#define DEVICE_STATUS         0x14	/* one byte */
#define QUEUE_SELECT          0x16	/* 16 bits, as the rest of the queue's */
#define QUEUE_SIZE            0x18
#define QUEUE_ENABLE          0x1c
#define QUEUE_NOTIFY_OFF      0x1e
#define QUEUE_DESC            0x20	/* 64 bits each, written as two halves */
#define QUEUE_DRIVER          0x28
#define QUEUE_DEVICE          0x30

/* Device status bits (2.1). */
#define ACKNOWLEDGE  1	/* the guest noticed the device */
#define DRIVER       2	/* and has a driver for it */
#define DRIVER_OK    4	/* the driver is ready: the device may run */
#define FEATURES_OK  8	/* the driver accepted features, the device agrees */

/* The split virtqueue (2.7). */
#define QSIZE              4	/* entries; a power of 2 up to the device's */
#define DESC_F_WRITE       2	/* the device writes this buffer (2.7.5) */
#define AVAIL_F_NO_INTERRUPT 1	/* "no interrupt needed", a hint (2.7.7) */
#define REQUEST_BYTES      16

	.intel_syntax noprefix
	.code16
	.text
	.globl start
start:
	/* Step 1: into protected mode, as lesson 2 does. */
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	mov dx, COM1 + UART_LCR
	mov al, 0x03			/* 8N1 */
	out dx, al
	lgdt [gdt_desc]
	mov eax, cr0
	or eax, 1			/* CR0.PE */
	mov cr0, eax
	ljmp CODE32, offset protected_mode

	.code32
protected_mode:
	mov ax, DATA32
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x7c00
	xor ebp, ebp			/* no device to tell if we fail early */
	mov esi, offset msg_hello
	call puts

	/*
	 * Step 2: find the device. Each of bus 0's 32 slots answers its
	 * register 0 with its vendor and device IDs, or all ones when the
	 * slot is empty. govmm puts its host bridge in slot 0 and the
	 * devices after it.
	 */
	xor ebx, ebx			/* the slot */
	.globl find_device
find_device:
	mov eax, ebx
	shl eax, 11
	or eax, PCI_ENABLE | PCI_ID
	call pci_read
	cmp eax, VIRTIO_RNG_ID
	je found
	inc ebx
	cmp ebx, 32
	jb find_device
	mov esi, offset msg_none
	jmp fail
found:
	mov esi, offset msg_slot
	call puts
	mov eax, ebx
	call putdec
	call newline
	shl ebx, 11
	or ebx, PCI_ENABLE		/* from now on: the device's config address */

	/*
	 * Step 3: the capability list (PCI 3.0, 6.7). Status bit 4 says
	 * there is one; register 0x34 holds the first entry's offset; each
	 * entry starts with its ID and the next entry's offset (0: the end).
	 * The virtio ones (ID 9) say where each structure is (4.1.4). A
	 * driver takes the first of each type it knows and skips the rest
	 * (govmm offers one of each); this one needs three.
	 */
	mov eax, ebx
	or eax, PCI_COMMAND
	call pci_read
	test eax, STATUS_CAPS << 16
	jz no_caps
	mov eax, ebx
	or eax, PCI_CAP_PTR
	call pci_read
	movzx edi, al			/* the first capability */
	.globl walk_caps
walk_caps:
	and edi, 0xfc			/* the low two bits are reserved */
	jz caps_done
	mov eax, ebx
	or eax, edi
	call pci_read			/* cap_vndr, cap_next, cap_len, cfg_type */
	mov edx, eax			/* kept for cap_next */
	cmp al, CAP_VENDOR
	jne next_cap
	mov ecx, eax
	shr ecx, 24			/* cfg_type */
	cmp ecx, CFG_ISR
	ja next_cap			/* device config (4) and others: not needed */
	lea eax, [ebx + edi + CAP_BAR]
	call pci_read
	movzx eax, al
	mov [cap_bar + ecx * 4], eax
	lea eax, [ebx + edi + CAP_OFFSET]
	call pci_read
	mov [cap_offset + ecx * 4], eax
	cmp ecx, CFG_NOTIFY
	jne next_cap
	lea eax, [ebx + edi + CAP_MULT]
	call pci_read
	mov [notify_mult], eax
next_cap:
	movzx edi, dh			/* cap_next */
	jmp walk_caps
caps_done:
	/* This driver keeps all three structures in one BAR; govmm's do
	 * (a real driver maps each structure's own BAR). */
	mov eax, [cap_bar + CFG_COMMON * 4]
	cmp eax, [cap_bar + CFG_NOTIFY * 4]
	jne two_bars
	cmp eax, [cap_bar + CFG_ISR * 4]
	jne two_bars
	xor edx, edx			/* puthex prints edx:eax */
	mov esi, offset msg_common
	call puts
	mov eax, [cap_offset + CFG_COMMON * 4]
	call puthex
	mov esi, offset msg_notify
	call puts
	mov eax, [cap_offset + CFG_NOTIFY * 4]
	call puthex
	mov esi, offset msg_isr
	call puts
	mov eax, [cap_offset + CFG_ISR * 4]
	call puthex
	mov esi, offset msg_in_bar
	call puts
	mov eax, [cap_bar + CFG_COMMON * 4]
	call putdec
	call newline

	/*
	 * Step 4: the BAR (base address register). govmm, playing the
	 * firmware, placed this 64-bit memory BAR above 4 GiB, which 32-bit
	 * code without PAE paging cannot address. So this program moves it
	 * into the 32-bit window, as firmware or an OS may: write the new
	 * address while memory decoding is off (it is after reset), then
	 * turn decoding on in the command register. Bits 2:1 of the BAR
	 * say its type: 10 is a 64-bit BAR, whose high half is the next
	 * register.
	 */
	.globl place_bar
place_bar:
	mov edi, [cap_bar + CFG_COMMON * 4]
	lea edi, [ebx + edi * 4 + PCI_BAR0]	/* the BAR's config address */
	mov eax, edi
	call pci_read
	mov [bar_low], eax
	xor edx, edx
	mov ecx, eax
	and ecx, 6
	cmp ecx, 4			/* a 64-bit BAR? */
	jne 1f
	lea eax, [edi + 4]
	call pci_read
	mov edx, eax
1:	mov esi, offset msg_bar
	call puts
	mov eax, [bar_low]
	and eax, 0xfffffff0		/* the low 4 bits are the type, not address */
	call puthex			/* edx:eax */
	mov eax, edi
	mov ecx, BAR_PLACE
	call pci_write
	cmp edx, 0
	je 2f
	lea eax, [edi + 4]
	xor ecx, ecx
	call pci_write
2:	mov eax, ebx
	or eax, PCI_COMMAND
	mov ecx, CMD_MEMORY | CMD_MASTER
	call pci_write
	mov esi, offset msg_moved
	call puts
	xor edx, edx
	mov eax, BAR_PLACE
	call puthex
	call newline

	/* Where the structures are now. */
	mov ebp, BAR_PLACE
	add ebp, [cap_offset + CFG_COMMON * 4]	/* ebp: common configuration */
	mov eax, BAR_PLACE
	add eax, [cap_offset + CFG_NOTIFY * 4]
	mov [notify_base], eax

	/*
	 * Step 5: initialisation (3.1.1). Every access to [ebp + ...] below
	 * is an MMIO exit that govmm's virtio-pci transport answers.
	 */
	.globl reset_device
reset_device:
	mov byte ptr [ebp + DEVICE_STATUS], 0	/* 0: reset the device */
1:	cmp byte ptr [ebp + DEVICE_STATUS], 0	/* until it reads 0 (4.1.4.3.2) */
	jne 1b
	mov byte ptr [ebp + DEVICE_STATUS], ACKNOWLEDGE
	mov byte ptr [ebp + DEVICE_STATUS], ACKNOWLEDGE | DRIVER

	/* Features (2.2): 64 bits, read 32 at a time through a select
	 * register. VERSION_1 (bit 32, virtio 6) says the device follows
	 * virtio 1.x rather than the legacy interface; a modern driver
	 * must accept it, and this one takes nothing else. */
	.globl features
features:
	mov ecx, 1
	mov [ebp + DEVICE_FEATURE_SELECT], ecx
	mov edx, [ebp + DEVICE_FEATURE]		/* bits 32-63 */
	xor ecx, ecx
	mov [ebp + DEVICE_FEATURE_SELECT], ecx
	mov eax, [ebp + DEVICE_FEATURE]		/* bits 0-31 */
	mov esi, offset msg_features
	call puts
	call puthex
	call newline
	test edx, 1			/* VERSION_1 */
	jz no_version1
	xor ecx, ecx
	mov [ebp + DRIVER_FEATURE_SELECT], ecx
	mov [ebp + DRIVER_FEATURE], ecx		/* none of bits 0-31 */
	inc ecx
	mov [ebp + DRIVER_FEATURE_SELECT], ecx
	mov [ebp + DRIVER_FEATURE], ecx		/* of bits 32-63, VERSION_1 */
	mov byte ptr [ebp + DEVICE_STATUS], ACKNOWLEDGE | DRIVER | FEATURES_OK
	/* The device may refuse the set: it clears FEATURES_OK then. */
	test byte ptr [ebp + DEVICE_STATUS], FEATURES_OK
	jz features_refused

	/*
	 * Step 6: virtqueue 0, the device's only one (5.4.2), set up as
	 * 4.1.5.1.3 says: select it, read its maximum size, write ours, the
	 * three areas' guest-physical addresses, then enable it. The areas
	 * are in this program's bss (below), zeroed by the loader.
	 */
	.globl setup_queue
setup_queue:
	xor ecx, ecx
	mov [ebp + QUEUE_SELECT], cx
	movzx eax, word ptr [ebp + QUEUE_SIZE]	/* 0 would mean no such queue */
	test eax, eax
	jz no_queue
	cmp eax, QSIZE
	jb no_queue
	mov esi, offset msg_queue
	call puts
	call putdec
	mov esi, offset msg_queue2
	call puts
	mov ax, QSIZE
	mov [ebp + QUEUE_SIZE], ax
	xor ecx, ecx			/* the high halves: below 4 GiB */
	mov eax, offset vq_desc
	mov [ebp + QUEUE_DESC], eax
	mov [ebp + QUEUE_DESC + 4], ecx
	mov eax, offset vq_avail
	mov [ebp + QUEUE_DRIVER], eax
	mov [ebp + QUEUE_DRIVER + 4], ecx
	mov eax, offset vq_used
	mov [ebp + QUEUE_DEVICE], eax
	mov [ebp + QUEUE_DEVICE + 4], ecx
	/* The queue's doorbell (4.1.4.4): the notify structure's start
	 * plus queue_notify_off times notify_off_multiplier. */
	movzx eax, word ptr [ebp + QUEUE_NOTIFY_OFF]
	imul eax, [notify_mult]
	add [notify_base], eax
	mov ax, 1
	mov [ebp + QUEUE_ENABLE], ax
	mov byte ptr [ebp + DEVICE_STATUS], ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
	mov esi, offset msg_driver_ok
	call puts

	/*
	 * Step 7: the request (2.7.13). Descriptor 0 (2.7.5) names the
	 * buffer: its guest-physical address, its length, and the WRITE
	 * flag, since the device writes it (for virtio-rng, 5.4.6: the
	 * device fills device-writable buffers with random bytes). The
	 * available ring (2.7.6) gets the chain's head, 0, in its slot
	 * idx % QSIZE; then idx goes up by one, which hands the buffer to
	 * the device. The device may read the ring at any time, so idx
	 * must be written last: x86 keeps stores in program order, so the
	 * write barrier 2.7.13 asks for is this order itself.
	 */
	.globl make_request
make_request:
	mov dword ptr [vq_desc], offset rng_buf		/* addr, low half */
	mov dword ptr [vq_desc + 4], 0			/* addr, high half */
	mov dword ptr [vq_desc + 8], REQUEST_BYTES	/* len */
	mov word ptr [vq_desc + 12], DESC_F_WRITE	/* flags; no NEXT: one buffer */
	mov word ptr [vq_desc + 14], 0			/* next: unused */
	mov word ptr [vq_avail], AVAIL_F_NO_INTERRUPT	/* flags: we poll */
	mov word ptr [vq_avail + 4], 0			/* ring[0]: descriptor 0 */
	mov word ptr [vq_avail + 2], 1			/* idx: one buffer made available */

	/* The notification (4.1.5.2): write the queue's index, 16 bits,
	 * to its doorbell. With an ioeventfd there this is no exit. */
	.globl notify
notify:
	mov edx, [notify_base]
	xor eax, eax			/* queue 0 */
	mov [edx], ax

	/*
	 * Step 8: wait for the used ring (2.7.8): the device writes the
	 * head of the chain it finished and the bytes it wrote into
	 * ring[idx % QSIZE], then bumps idx. Polling RAM is no exit; the
	 * device runs on another host thread meanwhile. (A real driver
	 * would sleep until the interrupt; see the Try section.)
	 */
	mov ecx, 0x40000000		/* give up some time, on any host */
	.globl wait_used
wait_used:
	cmp word ptr [vq_used + 2], 1	/* used idx */
	je used
	dec ecx
	jnz wait_used
	mov esi, offset msg_timeout
	jmp fail
	.globl used
used:
	mov esi, offset msg_used
	call puts
	mov eax, [vq_used + 4]		/* ring[0].id: the chain's head */
	call putdec
	mov esi, offset msg_used2
	call puts
	mov eax, [vq_used + 8]		/* ring[0].len: bytes written */
	call putdec
	mov esi, offset msg_used3
	call puts

	/* Done: reset the device (2.4), which stops it, and end the VM. */
	mov byte ptr [ebp + DEVICE_STATUS], 0
	mov esi, offset msg_done
	call puts
	mov al, 0
	out DEBUG_EXIT, al
	hlt

no_caps:
	mov esi, offset msg_no_caps
	jmp fail
two_bars:
	mov esi, offset msg_two_bars
	jmp fail
no_version1:
	mov esi, offset msg_no_version1
	jmp fail
features_refused:
	mov esi, offset msg_refused
	jmp fail
no_queue:
	mov esi, offset msg_no_queue
/* fail: print the line at esi, tell the device we gave up, exit 1. */
fail:
	call puts
	test ebp, ebp
	jz 1f
	or byte ptr [ebp + DEVICE_STATUS], 0x80	/* FAILED (2.1) */
1:	mov al, 1
	out DEBUG_EXIT, al
	hlt

/* pci_read: eax = the dword at configuration address eax. */
pci_read:
	push edx
	mov dx, PCI_ADDRESS
	out dx, eax
	mov dx, PCI_DATA
	in eax, dx
	pop edx
	ret

/* pci_write: the dword ecx to configuration address eax. */
pci_write:
	push edx
	mov dx, PCI_ADDRESS
	out dx, eax
	mov dx, PCI_DATA
	mov eax, ecx
	out dx, eax
	pop edx
	ret

/* putc: the byte in al to COM1, once the UART can take it. */
putc:
	push edx
	push eax
	mov dx, COM1 + UART_LSR
1:	in al, dx
	test al, LSR_THRE
	jz 1b
	pop eax
	mov dx, COM1 + UART_THR
	out dx, al
	pop edx
	ret

newline:
	push eax
	mov al, '\n'
	call putc
	pop eax
	ret

/* puts: the zero-terminated string at esi. */
puts:
	push eax
1:	lodsb
	test al, al
	jz 2f
	call putc
	jmp 1b
2:	pop eax
	ret

/* puthex: the 64-bit edx:eax as 0x and hex digits, no leading zeros. */
puthex:
	push eax
	push ebx
	push ecx
	push edx
	push edi
	mov ebx, eax			/* edx:ebx, shifted left a digit at a time */
	mov al, '0'
	call putc
	mov al, 'x'
	call putc
	mov cl, 16			/* digits left */
	xor ch, ch			/* 1 once a digit was printed */
1:	mov eax, edx
	shr eax, 28			/* the top digit */
	shl edx, 4			/* edx:ebx <<= 4 */
	mov edi, ebx
	shr edi, 28
	or edx, edi
	shl ebx, 4
	cmp cl, 1			/* the last digit is printed even if 0 */
	je 2f
	or ch, al
	jz 4f				/* a leading zero */
2:	add al, '0'
	cmp al, '9'
	jbe 3f
	add al, 'a' - '9' - 1
3:	call putc
4:	dec cl
	jnz 1b
	pop edi
	pop edx
	pop ecx
	pop ebx
	pop eax
	ret

/* putdec: eax in decimal. */
putdec:
	push eax
	push ebx
	push ecx
	push edx
	mov ebx, 10
	xor ecx, ecx
1:	xor edx, edx
	div ebx				/* eax = eax / 10, edx = the last digit */
	push edx
	inc ecx
	test eax, eax
	jnz 1b
2:	pop eax
	add al, '0'
	call putc
	dec ecx
	jnz 2b
	pop edx
	pop ecx
	pop ebx
	pop eax
	ret

/* The GDT of lesson 2: flat 32-bit code and data. */
	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: 32-bit data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

msg_hello:	.asciz "looking for virtio-rng (1af4:1044) on PCI bus 0\n"
msg_none:	.asciz "no virtio-rng found: run govmm with -rng on\n"
msg_slot:	.asciz "found in slot "
msg_no_caps:	.asciz "the device has no capability list\n"
msg_two_bars:	.asciz "the structures are in different BARs: not handled here\n"
msg_common:	.asciz "common +"
msg_notify:	.asciz ", notify +"
msg_isr:	.asciz ", ISR +"
msg_in_bar:	.asciz " in BAR"
msg_bar:	.asciz "BAR at "
msg_moved:	.asciz ", moved to "
msg_features:	.asciz "features "
msg_no_version1: .asciz "no VERSION_1: a legacy device, not handled here\n"
msg_refused:	.asciz "the device refused our features (FEATURES_OK cleared)\n"
msg_queue:	.asciz "queue 0: max "
msg_queue2:	.asciz ", we use 4\n"
msg_driver_ok:	.asciz "DRIVER_OK; asking for 16 bytes\n"
msg_no_queue:	.asciz "queue 0 is missing or too small\n"
msg_timeout:	.asciz "the device never answered\n"
msg_used:	.asciz "used: desc "
msg_used2:	.asciz ", "
msg_used3:	.asciz " bytes\n"
msg_done:	.asciz "reset; done\n"

/*
 * The driver's variables and the virtqueue. The split virtqueue's three
 * areas (2.7) and their alignments: the descriptor table, 16 bytes an
 * entry, aligned to 16; the available ring (driver to device: flags, idx,
 * ring[QSIZE], used_event), aligned to 2; the used ring (device to
 * driver: flags, idx, ring[QSIZE] of {id, len}, avail_event), aligned
 * to 4.
 */
	.bss
	.p2align 4
vq_desc:	.skip 16 * QSIZE
vq_avail:	.skip 2 + 2 + 2 * QSIZE + 2
	.p2align 2
vq_used:	.skip 2 + 2 + 8 * QSIZE + 2
	.p2align 4
rng_buf:	.skip REQUEST_BYTES
	.p2align 2
cap_bar:	.skip 4 * 4		/* by cfg_type, 1 to 3 */
cap_offset:	.skip 4 * 4
notify_mult:	.skip 4
notify_base:	.skip 4
bar_low:	.skip 4
