/*
 * guest.h - shared definitions of govmm's test guest.
 *
 * The guest is a tiny "kernel" that runs in 64-bit long mode. Ring 0 code
 * (kernel.c, entry.S) talks to devices through port I/O; ring 3 code
 * (user.c) runs the compute work and talks to the VMM through MMIO.
 * README.md describes the contract with the VMM.
 */
#ifndef GUEST_H
#define GUEST_H

/* Segment selectors: the same layout as Linux (arch/x86/include/asm/segment.h). */
#define KERNEL_CS 0x10
#define KERNEL_DS 0x18
#define USER_DS 0x2b /* GDT entry 5, RPL 3 */
#define USER_CS 0x33 /* GDT entry 6, RPL 3 */
#define TSS_SEL 0x40 /* GDT entries 8 and 9 (a 64-bit TSS takes two) */

/* Ports (ring 0 only). */
#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4 /* offset 0: exit status */
#define BOOT_MARK_PORT 0xf5  /* offset 1: write 1 = "guest reached its entry" */
#define SCRATCH_PORT 0xf6    /* offset 2: a register that does nothing */

/* MMIO aliases (not RAM: each access exits to the VMM). */
#define UART_MMIO 0xD0000000       /* 16550 registers, one byte each */
#define DEBUG_EXIT_MMIO 0xD0001000 /* offset 0: exit status; offset 2: scratch */

/* 16550 register offsets and bits. */
#define UART_THR 0 /* transmit holding register (write) */
#define UART_IER 1 /* interrupt enable */
#define UART_DLL 0 /* divisor latch low (when LCR.DLAB=1) */
#define UART_DLM 1 /* divisor latch high (when LCR.DLAB=1) */
#define UART_LCR 3 /* line control */
#define UART_LSR 5 /* line status */
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define LSR_THRE 0x20 /* transmit holding register empty */

/* Exit statuses. */
#define EXIT_OK 0
#define EXIT_CHECK_FAILED 2
#define EXIT_EXCEPTION 3

/* How we were booted (the first argument of kmain). */
#define BOOT_LINUX 1 /* 64-bit Linux boot protocol: RSI = zero page */
#define BOOT_PVH 2   /* PVH 32-bit entry (QEMU): EBX = hvm_start_info */

/* What ring 3 should do (user_args.work). */
#define WORK_FNV 1      /* FNV-1a of [addr, addr+count): the initrd checksum */
#define WORK_CHECKSUM 2 /* the compute loop, then "ring3 ok sum=..." */
#define WORK_MMIO 3     /* count MMIO writes to DEBUG_EXIT_MMIO + 2 */
#define WORK_SPIN 4     /* loop forever */
#define WORK_CPUID 5    /* CPUID of each CPUID_PROBES leaf into uargs.cpuid */
#define WORK_MXCSR 6    /* stmxcsr into sum, then ldmxcsr of count */

/* The CPUID leaves and subleaves mode=cpuid reports (ring 0 and ring 3):
 * the feature leaves whose bits govmm hides, XSAVE's leaf, and KVM's
 * hypervisor leaf (which shows whether CPUID reaches the VMM's table). */
#define CPUID_PROBES                                                        \
	{                                                                   \
		{0x1, 0}, {0x7, 0}, {0x7, 1}, {0xd, 0}, {0xd, 1},           \
		    {0x80000001, 0}, {0x40000000, 0}                        \
	}
#define N_CPUID_PROBES 7

#define USER_STACK_SIZE 8192

/* SMP (smp.c, trampoline.S): the page below 1 MiB where APs start (the
 * VMM's boot stack page, unused once the guest runs), and how many CPUs
 * the guest handles. */
#define TRAMPOLINE_BASE 0x8000
#define MAX_CPUS 256

#ifndef __ASSEMBLER__ /* the rest is C only (entry.S includes this file) */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

/*
 * user_args is how ring 0 and ring 3 talk: ring 0 fills in the work, ring 3
 * writes back the result. It lives in user-accessible memory (user.c).
 */
struct user_args {
	u64 work;     /* WORK_* */
	u64 addr;     /* WORK_FNV: first byte */
	u64 count;    /* bytes (FNV), loops (CHECKSUM), writes (MMIO) */
	u64 use_mmio; /* 1: ring 3 prints and exits through MMIO (govmm) */
	u64 done;     /* set by ring 3 when the work is finished */
	u32 sum;      /* result of WORK_FNV, WORK_CHECKSUM and WORK_MXCSR */
	u32 status;   /* exit status ring 3 writes to DEBUG_EXIT_MMIO */
	u32 cpuid[N_CPUID_PROBES][4]; /* WORK_CPUID: eax, ebx, ecx, edx */
};

/* user.c (ring 3) */
extern struct user_args uargs;
extern u8 user_stack[USER_STACK_SIZE];
void user_main(void) __attribute__((noreturn));
void user_finish_ud2(void) __attribute__((noreturn));

/* entry.S (ring 0) */
void user_call(u64 rip, u64 rsp);
void user_call_return(void) __attribute__((noreturn));
void load_segments(void);
void halt_forever(void) __attribute__((noreturn));
extern u64 gdt[], pml4[], pt0[];
extern char trap_stubs[], trap_stack_top[];

/* Symbols from the linker script: the user-accessible pages. */
extern char __user_start[], __user_end[];

#endif /* __ASSEMBLER__ */
#endif /* GUEST_H */
