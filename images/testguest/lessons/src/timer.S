/*
 * timer.S - lesson 5: a timer interrupt from the PIT.
 *
 * Devices tell the CPU that something happened with an *interrupt*: the
 * CPU stops what it runs, saves where it was, and runs the handler the
 * interrupt's vector names. On a PC the oldest source is the 8254 PIT
 * (programmable interval timer), whose counter 0 counts down from a value
 * at 1.193182 MHz and raises IRQ 0 each time it wraps; the 8259 PIC
 * (programmable interrupt controller) turns IRQ 0 into a vector for the
 * CPU, and waits for an "end of interrupt" before it sends the next.
 *
 * In real mode the handlers are in the interrupt vector table at address
 * 0: vector n's handler is the segment:offset pair at 4*n. This program
 *
 *   1. puts its handler in the table for vector 8 (IRQ 0, as the PC's
 *      firmware programs the PIC);
 *   2. initialises the PIC: vectors 8-15 for IRQs 0-7, every IRQ masked
 *      but 0;
 *   3. programs PIT counter 0 to fire 100 times a second;
 *   4. enables interrupts (sti) and halts (hlt) until each one comes.
 *
 * The handler counts the ticks and prints one line each; after three the
 * program ends.
 *
 * Which of these are VM exits? With KVM's own PIC and PIT (govmm's
 * default), none of the PIC and PIT programming: KVM emulates both in the
 * kernel, and hlt waits there too. Only the serial port's accesses reach
 * govmm. Run it with `-pit user` and govmm's own PIT model takes ports
 * 0x40-0x43: then the PIT's programming shows up as exits too. The
 * interrupt itself is never an exit: KVM injects it into the guest.
 *
 * Walkthrough: docs/lessons/5-timer.md.
 */
#include "lesson.h"

#define PIC1_CMD   0x20	/* the master 8259: command port */
#define PIC1_DATA  0x21	/*   data port: initialisation words, the mask */
#define PIC2_DATA  0xa1	/* the slave 8259's data port */
#define PIC_EOI    0x20	/* OCW2: non-specific end of interrupt */
#define PIT_CH0    0x40	/* PIT counter 0 */
#define PIT_MODE   0x43	/* PIT mode/command register */
#define PIT_HZ     1193182
#define TICK_HZ    100
#define TICKS      3
#define VECTOR     8	/* IRQ 0's vector */

	.intel_syntax noprefix
	.code16
	.text
	.globl start
start:
	cli
	xor ax, ax
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov sp, 0x7c00
	mov dx, COM1 + UART_LCR
	mov al, 0x03
	out dx, al

	/* Step 1: IVT entry 8 = 0000:timer_handler. */
	mov word ptr [VECTOR * 4], offset timer_handler
	mov word ptr [VECTOR * 4 + 2], 0

	/* Step 2: the PIC's four initialisation command words. */
	mov al, 0x11			/* ICW1: edge triggered, cascade, ICW4 follows */
	out PIC1_CMD, al
	mov al, VECTOR			/* ICW2: IRQ 0 is vector 8 */
	out PIC1_DATA, al
	mov al, 0x04			/* ICW3: the slave PIC is on IRQ 2 */
	out PIC1_DATA, al
	mov al, 0x01			/* ICW4: 8086 mode */
	out PIC1_DATA, al
	mov al, 0xfe			/* mask every IRQ but 0 */
	out PIC1_DATA, al
	mov al, 0xff			/* and all of the slave's */
	out PIC2_DATA, al

	/* Step 3: counter 0, mode 2 (rate generator), low byte then high. */
	mov al, 0x34			/* 00 counter 0, 11 lo/hi, 010 mode 2, 0 binary */
	out PIT_MODE, al
	mov ax, PIT_HZ / TICK_HZ	/* 11931: 100 Hz */
	out PIT_CH0, al
	mov al, ah
	out PIT_CH0, al

	mov si, offset msg_start
	call puts

	/* Step 4: wait for the ticks. */
	sti
	.globl wait_loop
wait_loop:
	hlt				/* sleep until an interrupt */
	cmp byte ptr [ticks], TICKS
	jb wait_loop
	cli
	mov si, offset msg_done
	call puts
	mov al, 0
	out DEBUG_EXIT, al
	hlt

/*
 * The interrupt handler. The CPU has pushed FLAGS, CS and IP and cleared
 * IF; iret pops them back. It must keep every register it uses, since the
 * interrupted code did not expect to be interrupted.
 */
	.globl timer_handler
timer_handler:
	push ax
	push bx
	push dx
	push si
	inc byte ptr [ticks]
	mov si, offset msg_tick
	call puts
	mov al, [ticks]
	add al, '0'
	call putc
	mov al, '\n'
	call putc
	mov al, PIC_EOI			/* the PIC may send the next interrupt */
	out PIC1_CMD, al
	pop si
	pop dx
	pop bx
	pop ax
	iret

puts:
	lodsb
	test al, al
	jz 2f
	call putc
	jmp puts
2:	ret

putc:
	mov bl, al
	mov dx, COM1 + UART_LSR
1:	in al, dx
	test al, LSR_THRE
	jz 1b
	mov al, bl
	mov dx, COM1 + UART_THR
	out dx, al
	ret

ticks:
	.byte 0
msg_start:
	.asciz "PIT counter 0 at 100 Hz; waiting for 3 timer interrupts\n"
msg_tick:
	.asciz "tick "
msg_done:
	.asciz "3 timer interrupts: done\n"
