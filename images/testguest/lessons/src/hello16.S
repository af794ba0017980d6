/*
 * hello16.S - lesson 1: real mode, and an exit per byte.
 *
 * When a PC powers on, its CPU is in *real mode*, the mode of the 1978
 * 8086: 16-bit registers, no memory protection, and addresses made of a
 * segment and an offset (linear = segment * 16 + offset, one MiB in all).
 * The firmware loads the first sector of the disk at 0000:7C00 and jumps
 * to it. govmm's "-boot real" does the same with this file, so the first
 * instruction below runs at linear address 0x7C00.
 *
 * The program prints a line on the serial port and ends the VM. Every IN
 * and OUT it makes is a VM exit: the CPU cannot talk to a device that
 * does not exist, so KVM stops the guest and hands the access to govmm
 * (KVM_EXIT_IO), whose UART model sends the byte to your terminal. Follow
 * it with `govmm step` (docs/lessons/1-real-mode.md).
 *
 * Intel syntax, "mov dst, src", the same as the stepper and gdb show.
 */
#include "lesson.h"

	.intel_syntax noprefix
	.code16				/* real mode runs 16-bit code */
	.text
	.globl start
start:
	cli				/* no interrupts: we have set up no handlers */
	xor ax, ax			/* segments 0: linear address = offset */
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00			/* the stack grows down from below us */

	/* Tell the UART: 8 data bits, no parity, 1 stop bit ("8N1"). */
	mov dx, COM1 + UART_LCR
	mov al, 0x03
	out dx, al			/* exit 1: KVM_EXIT_IO, out to port 0x3fb */

	mov si, offset message
	.globl print_loop
print_loop:
	lodsb				/* al = [ds:si]; si = si + 1 */
	test al, al
	jz done				/* the string ends with a zero byte */
	call putc
	jmp print_loop

done:
	mov al, 0			/* exit status 0: success */
	out DEBUG_EXIT, al		/* the last exit: govmm ends the VM */
	hlt				/* not reached */

/*
 * putc sends al: wait until the UART can take a byte, then give it.
 * Each character costs two exits: the IN of the status, the OUT of the data.
 */
	.globl putc
putc:
	mov bl, al
	mov dx, COM1 + UART_LSR
1:	in al, dx			/* exit: KVM_EXIT_IO, in from port 0x3fd */
	test al, LSR_THRE
	jz 1b				/* not ready yet: ask again */
	mov al, bl
	mov dx, COM1 + UART_THR
	out dx, al			/* exit: KVM_EXIT_IO, out to port 0x3f8 */
	ret

message:
	.asciz "Hello from real mode!\n"
