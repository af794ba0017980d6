/*
 * protected.S - lesson 2: from real mode to 32-bit protected mode.
 *
 * Real mode cannot protect anything and reaches only one MiB. Protected
 * mode (the 80286, and with 32 bits the 80386) replaces segment * 16 by a
 * *segment descriptor*: a segment register holds a selector, an index
 * into the Global Descriptor Table (GDT), whose 8-byte entry gives the
 * segment's base, limit, privilege level and kind (code or data, 16 or
 * 32 bits). The switch takes three steps:
 *
 *   1. lgdt: tell the CPU where the GDT is;
 *   2. set CR0.PE, bit 0 of control register 0 ("protection enable");
 *   3. a far jump, which loads CS from the GDT: until then the CPU still
 *      runs the old, 16-bit CS.
 *
 * Then the data segment registers are loaded with a data selector, and the
 * code runs with 32-bit registers. It prints one line from each mode.
 *
 * None of these steps is an exit: KVM (or, on PVM hosts, KVM's instruction
 * emulator) handles control registers and descriptor tables itself. Step
 * through them with `govmm step` (docs/lessons/2-protected-mode.md) and
 * watch cr0, cs and the mode in each stop's report change.
 */
#include "lesson.h"

/* Selectors: byte offsets into gdt below. The low 3 bits of a selector
 * are the requested privilege level and the table bit, 0 here. */
#define CODE32 0x08
#define DATA32 0x10

	.intel_syntax noprefix
	.code16
	.text
	.globl start
start:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	mov dx, COM1 + UART_LCR
	mov al, 0x03			/* 8N1 */
	out dx, al
	mov si, offset msg_real
	call puts16

	/* Step 1: the GDT. lgdt reads 6 bytes: the table's limit and base. */
	lgdt [gdt_desc]
	/* Step 2: protection on. */
	mov eax, cr0
	or eax, 1			/* CR0.PE */
	mov cr0, eax
	/* Step 3: reload CS with the 32-bit code segment. */
	.globl far_jump
far_jump:
	ljmp CODE32, offset protected_mode

/* puts16: print the zero-terminated string at ds:si, in real mode. */
puts16:
	lodsb
	test al, al
	jz 2f
	mov bl, al
	mov dx, COM1 + UART_LSR
1:	in al, dx
	test al, LSR_THRE
	jz 1b
	mov al, bl
	mov dx, COM1 + UART_THR
	out dx, al
	jmp puts16
2:	ret

	.code32
	.globl protected_mode
protected_mode:
	mov ax, DATA32			/* every data segment: base 0, 4 GiB */
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x7c00
	mov esi, offset msg_protected
	call puts32
	mov al, 0
	out DEBUG_EXIT, al		/* exit status 0 */
	hlt

/* puts32: the same, in 32-bit code: esi instead of si. */
puts32:
	lodsb
	test al, al
	jz 2f
	mov bl, al
	mov dx, COM1 + UART_LSR
1:	in al, dx
	test al, LSR_THRE
	jz 1b
	mov al, bl
	mov dx, COM1 + UART_THR
	out dx, al
	jmp puts32
2:	ret

/*
 * The GDT. Each descriptor packs base (32 bits), limit (20 bits) and
 * flags in a historical order (Intel SDM vol. 3, 3.4.5):
 *   0x00cf9a000000ffff: base 0, limit 0xfffff in 4 KiB units (4 GiB),
 *     present, ring 0, code, execute/read, 32-bit (D=1);
 *   0x00cf92000000ffff: the same as a read/write data segment.
 * Entry 0 is the null descriptor, which the CPU requires and never uses.
 */
	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: 32-bit data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1		/* limit: the last valid byte */
	.long gdt			/* base */

msg_real:
	.asciz "real mode: switching to protected mode\n"
msg_protected:
	.asciz "Hello from 32-bit protected mode!\n"
