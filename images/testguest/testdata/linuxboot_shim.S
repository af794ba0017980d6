/*
 * linuxboot_shim.S - a test-only boot loader that lets QEMU run the test
 * guest's 64-bit Linux-boot-protocol entry, the one govmm uses.
 *
 * QEMU boots this shim through PVH. The shim turns on long mode with an
 * identity map, copies the bzImage's protected-mode part (pm.bin) to
 * 0x100000, fills in the zero page (zp.bin, written by qemu_test.go) with
 * the addresses of the command line and initrd (both carried in this file),
 * and jumps to 0x100200 with RSI = zero page, CS = 0x10, DS/ES/SS = 0x18:
 * the state govmm sets up.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18			/* name size, desc size, XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long start32

	.text
	.code32
	.globl start32
start32:
	cli
	lgdt gdt_desc
	mov $pd, %edi			/* identity-map 1 GiB with 2 MiB pages */
	mov $0x83, %eax
	mov $512, %ecx
1:	mov %eax, (%edi)
	movl $0, 4(%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	movl $pd + 3, pdpt
	movl $pdpt + 3, pml4
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xC0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG | PE */
	mov %eax, %cr0
	ljmp $0x10, $start64

	.code64
start64:
	mov $0x18, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	cld
	mov $pm, %esi			/* the protected-mode part to 1 MiB */
	mov $0x100000, %edi
	mov $pm_end - pm, %ecx
	rep movsb
	movl $cmdline, zp + 0x228	/* cmd_line_ptr */
	movl $initrd, zp + 0x218	/* ramdisk_image */
	movl $initrd_end - initrd, zp + 0x21c /* ramdisk_size */
	mov $zp, %esi
	mov $0x100200, %eax		/* the 64-bit entry */
	jmp *%rax

	.data
	.balign 16
gdt:	.quad 0, 0x00cf9b000000ffff, 0x00af9b000000ffff, 0x00cf93000000ffff
gdt_desc:
	.word 31
	.long gdt
	.balign 4096
zp:	.incbin "zp.bin"
cmdline:
	.incbin "cmdline.bin"
	.balign 4096
initrd:	.incbin "initrd.bin"
initrd_end:
	.balign 16
pm:	.incbin "pm.bin"
pm_end:

	.bss
	.balign 4096
pml4:	.space 4096
pdpt:	.space 4096
pd:	.space 4096
