/*
 * entry.S - the assembly half of govmm's test guest: the two entry points,
 * the GDT, the page tables, the exception stubs and the ring 0 <-> ring 3
 * switches. Everything else is C (kernel.c for ring 0, user.c for ring 3).
 *
 * AT&T syntax: "mov src, dst"; "$x" is an immediate, "x" alone is memory.
 */
#include "guest.h"

/* ------------------------------------------------------------------------
 * 64-bit entry (Linux boot protocol, used by govmm). Must be the first code
 * in the image: the bzImage puts it at offset 0x200 of the protected-mode
 * part (load address + 0x200). State on entry: long mode, paging on with an
 * identity map, CS=0x10, interrupts off, RSI = zero page, no stack.
 */
	.section .text.entry64, "ax"
	.code64
	.globl entry64
entry64:
	mov $1, %al
	out %al, $BOOT_MARK_PORT	/* mark the boot timer: "guest entered" */
	cld
	mov $kstack_top, %rsp		/* our own stack (not in the bss) */
	mov %rsi, %rbx			/* keep the zero page pointer */
	call zero_bss
	mov $BOOT_LINUX, %edi		/* kmain(BOOT_LINUX, zero page) */
	mov %rbx, %rsi
	call kmain
	jmp halt_forever

/* Zero [__bss_start, __bss_end): a bzImage loader copies only the file. */
zero_bss:
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $3, %ecx			/* the linker script 8-aligns both ends */
	xor %eax, %eax
	rep stosq
	ret

	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp halt_forever

/* ------------------------------------------------------------------------
 * PVH entry (used by QEMU's -kernel guest.elf). State on entry: 32-bit
 * protected mode, paging off, flat segments, EBX = hvm_start_info. We turn
 * on long mode ourselves, with our final page tables, then join the C code.
 */
	.text
	.code32
	.globl entry_pvh32
entry_pvh32:
	cli
	cld
	/* zero the bss (EBX survives: rep stosb uses EDI, ECX, EAX) */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	rep stosb
	lgdt gdt_desc
	mov %cr4, %eax
	or $0x20, %eax			/* CR4.PAE: 64-bit page table entries */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xC0000080, %ecx		/* MSR EFER */
	rdmsr
	or $0x100, %eax			/* EFER.LME: long mode enable */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* CR0.PG | CR0.PE: paging on = long mode active */
	mov %eax, %cr0
	ljmp $KERNEL_CS, $entry_pvh64	/* load a 64-bit CS */

	.code64
entry_pvh64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov $kstack_top, %rsp
	mov $BOOT_PVH, %edi		/* kmain(BOOT_PVH, start_info) */
	mov %ebx, %esi			/* (zero-extends to RSI) */
	call kmain
	jmp halt_forever

/* The ELF note that tells QEMU (and Xen) where the PVH entry is. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* name size: "Xen\0" */
	.long 4				/* descriptor size */
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long entry_pvh32

/* ------------------------------------------------------------------------
 * load_segments(): switch to our GDT, reload every segment register, load
 * the task register. CS can only be changed by a far jump/return.
 */
	.text
	.globl load_segments
load_segments:
	lgdt gdt_desc
	pushq $KERNEL_CS
	lea 1f(%rip), %rax
	pushq %rax
	lretq				/* "return" to 1: with CS = KERNEL_CS */
1:	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $TSS_SEL, %eax
	ltr %ax
	ret

/* ------------------------------------------------------------------------
 * user_call(rip, rsp): run ring 3 code at rip on stack rsp, and come back
 * here when it executes the ud2 at user_finish_ud2 (see trap() in
 * kernel.c, which calls user_call_return). Returns like a normal function.
 */
	.globl user_call
user_call:
	push %rbx			/* save what the C ABI says we must keep */
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, saved_kernel_rsp
	mov $USER_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	pushq $USER_DS			/* SS */
	pushq %rsi			/* RSP */
	pushq $0x202			/* RFLAGS: IF=1 like Linux user space */
	pushq $USER_CS			/* CS: the CPL comes from its low 2 bits */
	pushq %rdi			/* RIP */
	iretq

	.globl user_call_return
user_call_return:			/* called from trap(), on the trap stack */
	mov saved_kernel_rsp, %rsp
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret				/* returns from user_call */

/* ------------------------------------------------------------------------
 * ldmxcsr_try(p): ldmxcsr (%rdi); return 0. If it raises #GP (a reserved
 * MXCSR bit), trap() resumes at ldmxcsr_try_fault, which returns 1.
 */
	.globl ldmxcsr_try, ldmxcsr_try_insn, ldmxcsr_try_fault
ldmxcsr_try:
	xor %eax, %eax
ldmxcsr_try_insn:
	ldmxcsr (%rdi)
	ret
ldmxcsr_try_fault:
	mov $1, %eax
	ret

/* ------------------------------------------------------------------------
 * Exception and interrupt stubs: one 16-byte stub per vector, so the IDT
 * entry for vector v points to trap_stubs + 16*v. The CPU pushes an error
 * code for some exceptions only; the others push a 0 so every frame looks
 * the same. Then the vector number, then trap_common.
 */
	.balign 16
	.globl trap_stubs
trap_stubs:
	vector = 0
	.rept 256
	.balign 16
	.if !(vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21 || vector == 29 || vector == 30)
	pushq $0
	.endif
	pushq $vector
	jmp trap_common
	vector = vector + 1
	.endr

trap_common:
	push %rax			/* struct trap_frame, read from the bottom up */
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call trap			/* trap(struct trap_frame *) */
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp			/* drop vector and error code */
	iretq

/* ------------------------------------------------------------------------
 * The GDT, in Linux's layout (arch/x86/include/asm/segment.h). In long
 * mode base and limit are ignored for code/data; what matters is the type,
 * the DPL (privilege level) and the L (64-bit) bit.
 */
	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0				/* 0x00: null */
	.quad 0x00cf9b000000ffff	/* 0x08: kernel 32-bit code */
	.quad 0x00af9b000000ffff	/* 0x10: kernel 64-bit code (L=1) */
	.quad 0x00cf93000000ffff	/* 0x18: kernel data */
	.quad 0x00cffb000000ffff	/* 0x20: user 32-bit code, DPL 3 */
	.quad 0x00cff3000000ffff	/* 0x28: user data, DPL 3 (selector 0x2b) */
	.quad 0x00affb000000ffff	/* 0x30: user 64-bit code, DPL 3 (0x33) */
	.quad 0				/* 0x38: unused */
	.quad 0, 0			/* 0x40: 64-bit TSS, filled in by kernel.c */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

saved_kernel_rsp:
	.quad 0

/*
 * Page tables: an identity map of the first 4 GiB. 2 MiB pages, except the
 * first 2 MiB (where the guest lives), which uses 4 KiB pages so kernel.c
 * can mark only the guest's ring-3 pages user-accessible (bit U/S). The
 * 2 MiB page at 0xD0000000 (the MMIO aliases) is user-accessible and
 * uncached (PWT|PCD). Entry bits: P=1 RW=2 US=4 PWT=8 PCD=0x10 PS=0x80.
 */
	.balign 4096
	.globl pml4, pt0
pml4:	.quad pdpt + 0x7		/* upper levels allow everything (P RW US); */
	.fill 511, 8, 0			/* the last level (the page) decides */
pdpt:	.quad pd + 0x7, pd + 0x1007, pd + 0x2007, pd + 0x3007
	.fill 508, 8, 0
pd:	.quad pt0 + 0x7			/* 0-2 MiB: 4 KiB pages */
	addr = 0x200000
	.rept (UART_MMIO >> 21) - 1
	.quad addr + 0x83
	addr = addr + 0x200000
	.endr
	.quad UART_MMIO + 0x9f		/* MMIO aliases: P RW US PWT PCD PS */
	addr = UART_MMIO + 0x200000
	.rept 2048 - (UART_MMIO >> 21) - 1
	.quad addr + 0x83
	addr = addr + 0x200000
	.endr
pt0:	addr = 0
	.rept 512
	.quad addr + 0x3
	addr = addr + 0x1000
	.endr

/* Stacks: not zeroed, so not in .bss (the linker script puts .stacks last). */
	.section .stacks, "aw", @nobits
	.balign 16
	.space 16384
	.globl kstack_top
kstack_top:
	.space 8192
	.globl trap_stack_top
trap_stack_top:
