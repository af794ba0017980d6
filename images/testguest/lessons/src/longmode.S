/*
 * longmode.S - lesson 3: paging, and 64-bit long mode.
 *
 * Long mode, the x86-64 mode every modern OS runs in, cannot be entered
 * without paging: every address the CPU uses is translated through page
 * tables, four levels of them, each a 4 KiB page of 512 eight-byte
 * entries. A 64-bit linear address is split into four 9-bit indexes (one
 * per level) and a 12-bit offset; an entry at the third level may map a
 * whole 2 MiB page instead of pointing at another table (Intel SDM vol. 3,
 * 4.5 "4-level paging"). CR3 holds the physical address of the top table.
 *
 * From protected mode (lesson 2) the way in is:
 *
 *   1. build the page tables;
 *   2. CR4.PAE on (long mode needs its 64-bit table entries);
 *   3. CR3 = the top table;
 *   4. EFER.LME on: EFER is a model-specific register (MSR 0xC0000080),
 *      written with wrmsr;
 *   5. CR0.PG on: paging starts, and with LME set the CPU is in long mode
 *      (EFER.LMA becomes 1) - but still running 32-bit code;
 *   6. a far jump to a code segment with the L bit: 64-bit mode.
 *
 * To show that addresses are now translated, the tables map the first
 * 2 MiB twice: at 0 (so this code keeps running where it is) and again at
 * 1 GiB. The last message is printed by reading it through the second
 * mapping: other virtual addresses, the same physical bytes.
 *
 * Walkthrough: docs/lessons/3-long-mode.md.
 */
#include "lesson.h"

#define CODE32 0x08
#define CODE64 0x10
#define DATA   0x18

#define PTE_P  0x01	/* present */
#define PTE_W  0x02	/* writable */
#define PTE_PS 0x80	/* in a page directory entry: a 2 MiB page */

#define ALIAS  0x40000000	/* 1 GiB: where the second mapping starts */

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
	/* Into protected mode, as in lesson 2. */
	lgdt [gdt_desc]
	mov eax, cr0
	or eax, 1
	mov cr0, eax
	ljmp CODE32, offset protected_mode

	.code32
protected_mode:
	mov ax, DATA
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov esp, 0x7c00
	mov esi, offset msg_protected
	call puts32

	/* Step 1: page tables, in the zeroed bss.
	 *   pml4[0] -> pdpt
	 *   pdpt[0] -> pd      (virtual 0 .. 1 GiB)
	 *   pdpt[1] -> pd      (virtual 1 GiB .. 2 GiB: the same table again)
	 *   pd[0]   =  a 2 MiB page at physical 0 */
	.globl build_page_tables
build_page_tables:
	mov eax, offset pdpt
	or eax, PTE_P | PTE_W
	mov [pml4], eax
	mov eax, offset pd
	or eax, PTE_P | PTE_W
	mov [pdpt], eax
	mov [pdpt + 8], eax
	mov dword ptr [pd], PTE_P | PTE_W | PTE_PS

	/* Step 2: PAE. */
	mov eax, cr4
	or eax, 1 << 5			/* CR4.PAE */
	mov cr4, eax
	/* Step 3: the top table. */
	mov eax, offset pml4
	mov cr3, eax
	/* Step 4: EFER.LME. */
	mov ecx, 0xc0000080		/* IA32_EFER */
	rdmsr				/* edx:eax = the MSR */
	or eax, 1 << 8			/* LME */
	wrmsr
	/* Step 5: paging on. From here every address goes through the tables. */
	.globl paging_on
paging_on:
	mov eax, cr0
	or eax, 1 << 31			/* CR0.PG */
	mov cr0, eax
	/* Step 6: a 64-bit code segment. */
	ljmp CODE64, offset long_mode

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

	.code64
	.globl long_mode
long_mode:
	mov rsp, 0x7c00
	lea rsi, [rip + msg_long]	/* 64-bit code addresses data relative to RIP */
	call puts64
	/* The same message's bytes, read through the mapping at 1 GiB. */
	mov rsi, offset msg_alias + ALIAS
	call puts64
	mov al, 0
	out DEBUG_EXIT, al
	hlt

puts64:
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
	jmp puts64
2:	ret

/* The GDT. 0x00af9a000000ffff is a code segment with L=1 (64-bit) and
 * D=0, as long mode requires; base and limit no longer matter there. */
	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00af9a000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x18: data */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt

msg_protected:
	.asciz "protected mode: turning on paging and long mode\n"
msg_long:
	.asciz "Hello from 64-bit long mode!\n"
msg_alias:
	.asciz "and again through the page tables' second mapping at 1 GiB\n"

/* Page tables must be 4 KiB aligned; the bss is zeroed by the loader. */
	.bss
	.p2align 12
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096
