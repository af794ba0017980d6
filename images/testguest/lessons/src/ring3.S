/*
 * ring3.S - lesson 4: user mode (ring 3) and a system call.
 *
 * Code runs at a privilege level, its *ring*: 0 for a kernel, 3 for user
 * programs. In ring 3 the CPU refuses the instructions that would let a
 * program take over the machine (cli, out, loading control registers):
 * they raise #GP, general protection, and the kernel decides what
 * happens. A user program asks the kernel for service with a *system
 * call*: here the classic `int 0x80` of 32-bit Linux, with the call's
 * number in eax.
 *
 * What a kernel sets up for that (after lesson 3's way into long mode):
 *
 *   - GDT entries for ring 3 code and data (descriptor privilege level 3),
 *     at the selectors Linux uses: 0x33 (user code) and 0x2b (user data);
 *   - a TSS (task-state segment) whose RSP0 field is the stack the CPU
 *     switches to when an interrupt or exception arrives from ring 3;
 *   - an IDT (interrupt descriptor table): for each vector, the handler's
 *     address; gate 0x80 with privilege level 3, so that ring 3 may use it;
 *   - page-table entries with the U/S bit, which ring 3 needs to touch a page.
 *
 * Then iretq "returns" to ring 3: it pops RIP, CS, RFLAGS, RSP and SS from
 * a frame the kernel pushed, and CS's low two bits (3) are the new ring.
 *
 * On PVM hosts (govmm's CI machines) ring 3 runs natively and `int 0x80`
 * arrives as #UD, invalid opcode; the #UD handler below recognises the two
 * bytes cd 80 and makes the same system call. The output is the same on
 * every host. Note that none of this is a VM exit: rings, gates and the
 * TSS are the CPU's business. Only the kernel's port writes exit.
 *
 * Walkthrough: docs/lessons/4-ring-3.md.
 */
#include "lesson.h"

#define CODE32    0x08
#define KERNEL_CS 0x10
#define KERNEL_DS 0x18
#define USER_DS   0x2b	/* GDT entry 0x28, RPL 3 */
#define USER_CS   0x33	/* GDT entry 0x30, RPL 3 */
#define TSS_SEL   0x40

#define PTE_P  0x01
#define PTE_W  0x02
#define PTE_U  0x04	/* user: ring 3 may use the page */
#define PTE_PS 0x80

#define SYS_WRITE 1	/* rsi = a zero-terminated string */
#define SYS_EXIT  2	/* edi = the exit status */

	.intel_syntax noprefix
	.code16
	.text
	.globl start
start:
	/* Real mode to protected mode to long mode: lesson 3, in short. */
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	lgdt [gdt_desc]
	mov eax, cr0
	or eax, 1
	mov cr0, eax
	ljmp CODE32, offset pm32
	.code32
pm32:
	mov ax, KERNEL_DS
	mov ds, ax
	mov es, ax
	mov ss, ax
	/* One 2 MiB page at 0, now with PTE_U at every level. */
	mov dword ptr [pml4], offset pdpt + (PTE_P | PTE_W | PTE_U)
	mov dword ptr [pdpt], offset pd + (PTE_P | PTE_W | PTE_U)
	mov dword ptr [pd], PTE_P | PTE_W | PTE_U | PTE_PS
	mov eax, cr4
	or eax, 1 << 5
	mov cr4, eax
	mov eax, offset pml4
	mov cr3, eax
	mov ecx, 0xc0000080
	rdmsr
	or eax, 1 << 8
	wrmsr
	mov eax, cr0
	or eax, 1 << 31
	mov cr0, eax
	ljmp KERNEL_CS, offset kernel_main

	.code64
kernel_main:
	mov rsp, offset kstack_top
	mov dx, COM1 + UART_LCR
	mov al, 0x03
	out dx, al
	lea rsi, [rip + msg_kernel]
	call puts

	/* The TSS descriptor (16 bytes, Intel SDM vol. 3, 8.2.3): limit 0x67,
	 * the TSS's address as base, type 0x89 (present, available 64-bit
	 * TSS). The TSS lies below 16 MiB, so the high base bytes are 0. */
	mov qword ptr [tss + 4], offset kstack_top	/* RSP0 */
	mov rax, offset tss
	shl rax, 16
	or rax, 0x67
	mov rdx, 0x89
	shl rdx, 40
	or rax, rdx
	mov [gdt + TSS_SEL], rax
	mov ax, TSS_SEL
	ltr ax

	/* The IDT: #UD (6), #GP (13) and the system call gate (0x80). */
	mov edi, 6
	lea rsi, [rip + ud_handler]
	mov dl, 0x8e			/* present, ring 0 only, interrupt gate */
	call set_gate
	mov edi, 13
	lea rsi, [rip + gp_handler]
	call set_gate
	mov edi, 0x80
	lea rsi, [rip + syscall_gate]
	mov dl, 0xee			/* present, ring 3 may call it, interrupt gate */
	call set_gate
	lidt [idt_desc]

	/* Down to ring 3: a frame for iretq, as if ring 3 had been interrupted. */
	lea rsi, [rip + msg_iretq]
	call puts
	push USER_DS			/* SS */
	push offset ustack_top		/* RSP */
	push 0x2			/* RFLAGS: interrupts off */
	push USER_CS			/* CS: its low bits, 3, are the ring */
	lea rax, [rip + user_main]
	push rax			/* RIP */
	.globl to_ring3
to_ring3:
	iretq

/* set_gate(edi = vector, rsi = handler, dl = type and privilege): a 16-byte
 * interrupt gate (Intel SDM vol. 3, 6.14.1). Handlers are below 4 GiB. */
set_gate:
	shl edi, 4
	lea rdi, [idt + rdi]
	mov [rdi], si			/* offset 15..0 */
	mov word ptr [rdi + 2], KERNEL_CS
	mov byte ptr [rdi + 4], 0	/* no interrupt stack table */
	mov [rdi + 5], dl
	shr esi, 16
	mov [rdi + 6], si		/* offset 31..16 */
	mov dword ptr [rdi + 8], 0	/* offset 63..32 */
	ret

/* ---- ring 3 -------------------------------------------------------------- */

	.globl user_main
user_main:
	lea rsi, [rip + msg_user]
	mov eax, SYS_WRITE
	.globl user_syscall
user_syscall:
	int 0x80			/* into the kernel, and back */
	cli				/* forbidden in ring 3: #GP */
	lea rsi, [rip + msg_after]
	mov eax, SYS_WRITE
	int 0x80
	mov edi, 0
	mov eax, SYS_EXIT
	int 0x80

/* ---- ring 0: traps ------------------------------------------------------- */

/* The gate of vector 0x80. The CPU has switched to RSP0's stack and
 * pushed SS, RSP, RFLAGS, CS and RIP of ring 3. */
syscall_gate:
	cmp eax, SYS_EXIT
	je sys_exit
	call puts			/* SYS_WRITE: rsi is ring 3's string */
	iretq				/* back to ring 3, after the int */
sys_exit:
	mov eax, edi
	out DEBUG_EXIT, al
	hlt

/* #UD: on PVM, `int 0x80` from ring 3 arrives here. The frame's RIP is
 * the int instruction itself (a fault), so step over its 2 bytes. */
ud_handler:
	mov rbx, [rsp]			/* the faulting RIP */
	cmp word ptr [rbx], 0x80cd	/* the bytes cd 80: int 0x80 */
	jne unexpected
	add qword ptr [rsp], 2
	jmp syscall_gate

/* #GP pushes an error code first. Ring 3's cli: say so and skip it. */
gp_handler:
	mov rbx, [rsp + 8]		/* the faulting RIP */
	cmp byte ptr [rbx], 0xfa	/* cli */
	jne unexpected
	push rsi
	lea rsi, [rip + msg_gp]
	call puts
	pop rsi
	add qword ptr [rsp + 8], 1	/* resume after the cli */
	add rsp, 8			/* drop the error code */
	iretq

unexpected:
	lea rsi, [rip + msg_unexpected]
	call puts
	mov al, 3
	out DEBUG_EXIT, al
	hlt

/* puts: print the string at rsi through COM1 (ring 0 only). */
puts:
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
	jmp puts
2:	ret

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code, for the way in */
	.quad 0x00af9a000000ffff	/* 0x10: kernel code, 64-bit, ring 0 */
	.quad 0x00cf92000000ffff	/* 0x18: kernel data */
	.quad 0				/* 0x20: (Linux's 32-bit user code) */
	.quad 0x00cff2000000ffff	/* 0x28: user data, ring 3 */
	.quad 0x00affa000000ffff	/* 0x30: user code, 64-bit, ring 3 */
	.quad 0				/* 0x38 */
	.quad 0, 0			/* 0x40: the TSS, filled in above */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
idt_desc:
	.word 256 * 16 - 1
	.quad idt

msg_kernel:
	.asciz "kernel: long mode, ring 0\n"
msg_iretq:
	.asciz "kernel: iretq to ring 3\n"
msg_user:
	.asciz "user: hello from ring 3, through a system call\n"
msg_gp:
	.asciz "kernel: #GP: ring 3 may not execute cli; skipping it\n"
msg_after:
	.asciz "user: still running after the #GP\n"
msg_unexpected:
	.asciz "kernel: unexpected exception\n"

	.bss
	.p2align 12
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
idt:	.skip 256 * 16
tss:	.skip 0x68
	.p2align 4
	.skip 2048
kstack_top:
	.skip 2048
ustack_top:
