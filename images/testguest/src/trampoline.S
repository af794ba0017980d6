/*
 * trampoline.S - where an application processor (AP) starts.
 *
 * A startup IPI (SIPI) with vector V starts an AP in real mode at
 * CS:IP = V<<8:0, that is at physical address V<<12 (Intel SDM vol. 3,
 * 9.4.4 "MP Initialization Example"). smp.c copies the bytes between
 * trampoline_start and trampoline_end to TRAMPOLINE_BASE (a page below
 * 1 MiB), fills in tramp_cr3, tramp_stack and tramp_entry there, and
 * sends INIT, SIPI, SIPI. The AP then goes the way the boot processor went
 * before it, in 20 instructions: real mode -> 32-bit protected mode ->
 * long mode with the guest's page tables -> ap_main() in C.
 *
 * The code runs at TRAMPOLINE_BASE, not where it is linked, so every
 * absolute address in it is TRAMPOLINE_BASE + (label - trampoline_start)
 * (the REL macro); the 64-bit part may use RIP-relative operands, which
 * move with the code.
 */
#include "guest.h"

#define REL(x) (TRAMPOLINE_BASE + (x) - trampoline_start)

/* The trampoline's own GDT selectors. */
#define T_CODE32 0x08
#define T_DATA 0x10
#define T_CODE64 0x18

	.section .rodata
	.balign 16
	.globl trampoline_start, trampoline_end
	.globl tramp_cr3, tramp_stack, tramp_entry
trampoline_start:
	.code16
	cli
	cld
	/* DS is 0 after INIT; CS's base is TRAMPOLINE_BASE. */
	lgdtl %cs:(tramp_gdt_desc - trampoline_start)
	mov %cr0, %eax
	or $1, %eax			/* CR0.PE: protected mode */
	mov %eax, %cr0
	ljmpl $T_CODE32, $REL(tramp_pm32)

	.code32
tramp_pm32:
	mov $T_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $0x20, %eax			/* CR4.PAE */
	mov %eax, %cr4
	mov REL(tramp_cr3), %eax	/* the guest's PML4 */
	mov %eax, %cr3
	mov $0xC0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax		/* CR0.PG: long mode is active */
	mov %eax, %cr0
	ljmpl $T_CODE64, $REL(tramp_lm64)

	.code64
tramp_lm64:
	mov tramp_stack(%rip), %rsp
	mov tramp_entry(%rip), %rax
	call *%rax			/* ap_main(): does not return */
1:	cli
	hlt
	jmp 1b

	.balign 8
tramp_gdt:
	.quad 0				/* null */
	.quad 0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf93000000ffff	/* 0x10: data */
	.quad 0x00af9b000000ffff	/* 0x18: 64-bit code */
tramp_gdt_desc:
	.word tramp_gdt_desc - tramp_gdt - 1
	.long REL(tramp_gdt)
	.balign 8
tramp_cr3:	.quad 0			/* filled in by smp.c in the copy */
tramp_stack:	.quad 0
tramp_entry:	.quad 0
trampoline_end:
