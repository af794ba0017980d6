/*
 * user.c - the ring-3 half of govmm's test guest.
 *
 * Everything in this file (code, strings, data, the stack) is linked into
 * the guest's user-accessible pages (see guest.ld), and it must not call
 * anything outside this file: kernel pages are not user-accessible, so a
 * call into kernel.c would be a page fault. Build checks that user.o has no
 * undefined symbols.
 *
 * On PVM hosts ring 3 runs natively (ring 0 is emulated), so the heavy work
 * (checksums) happens here. Ring 3 cannot use port I/O: it talks to the VMM
 * through MMIO aliases of the UART and of the debug-exit device, pages that
 * are not RAM, so every access exits to the VMM.
 */
#include "guest.h"

struct user_args uargs;
u8 user_stack[USER_STACK_SIZE] __attribute__((aligned(16)));
static u8 buf[4096];

/* FNV-1a, 32 bit: for each byte, h = (h ^ byte) * 16777619. */
#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static u32 fnv1a(const u8 *p, u64 n)
{
	u32 h = FNV_OFFSET;
	for (u64 i = 0; i < n; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

/* The compute loop: FNV-1a over buf[i % 4096] for i = 0 .. loops-1. */
static u32 checksum(u64 loops)
{
	for (u64 j = 0; j < sizeof(buf); j++)
		buf[j] = (u8)(j * 31 + 7);
	u32 h = FNV_OFFSET;
	for (u64 i = 0; i < loops; i++)
		h = (h ^ buf[i & (sizeof(buf) - 1)]) * FNV_PRIME;
	return h;
}

/* Print one byte through the UART's MMIO alias: wait for THRE, then write. */
static void mmio_putc(char c)
{
	volatile u8 *uart = (volatile u8 *)(u64)UART_MMIO;
	for (int i = 0; i < 1000 && !(uart[UART_LSR] & LSR_THRE); i++)
		;
	uart[UART_THR] = (u8)c;
}

static void mmio_puts(const char *s)
{
	while (*s)
		mmio_putc(*s++);
}

static void mmio_puthex32(u32 v)
{
	for (int shift = 28; shift >= 0; shift -= 4)
		mmio_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

static void mmio_putdec(u64 v)
{
	char digits[20];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		mmio_putc(digits[--n]);
}

/* CPUID in ring 3: on a VMM that traps it (KVM with CPUID faulting, as
 * PVM does) it answers from the VMM's table, otherwise from the CPU. */
static void cpuid(u32 leaf, u32 subleaf, u32 r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

static const u32 cpuid_probes[N_CPUID_PROBES][2] = CPUID_PROBES;

/* Entered by iretq from user_call (entry.S), with uargs filled in. */
void user_main(void)
{
	switch (uargs.work) {
	case WORK_FNV:
		uargs.sum = fnv1a((const u8 *)uargs.addr, uargs.count);
		break;
	case WORK_CHECKSUM:
		uargs.sum = checksum(uargs.count);
		if (uargs.use_mmio) {
			mmio_puts("ring3 ok sum=");
			mmio_puthex32(uargs.sum);
			mmio_puts("\n");
		}
		break;
	case WORK_MMIO: {
		volatile u8 *scratch = (volatile u8 *)(u64)(DEBUG_EXIT_MMIO + 2);
		for (u64 i = 0; i < uargs.count; i++)
			*scratch = (u8)i;
		if (uargs.use_mmio) {
			mmio_puts("mmio done n=");
			mmio_putdec(uargs.count);
			mmio_puts("\n");
		}
		break;
	}
	case WORK_CPUID:
		for (int i = 0; i < N_CPUID_PROBES; i++)
			cpuid(cpuid_probes[i][0], cpuid_probes[i][1], uargs.cpuid[i]);
		break;
	case WORK_MXCSR: {
		/* Ring 3 runs natively on PVM: these never exit to the VMM, so
		 * they show what the VMM's fixups left in the vCPU. */
		u32 v;
		__asm__ volatile("stmxcsr %0" : "=m"(v));
		uargs.sum = v;
		v = (u32)uargs.count;
		__asm__ volatile("ldmxcsr %0" : : "m"(v));
		break;
	}
	case WORK_SPIN:
		for (;;)
			__asm__ volatile("pause");
	}
	uargs.done = 1;
	/* The last work ends the VM: write the status to the MMIO debug-exit. */
	if (uargs.use_mmio && (uargs.work == WORK_CHECKSUM || uargs.work == WORK_MMIO))
		*(volatile u8 *)(u64)DEBUG_EXIT_MMIO = (u8)uargs.status;
	/* Back to ring 0: on QEMU, after FNV, CPUID and MXCSR, or if the
	 * MMIO write returned. */
	user_finish_ud2();
}

/*
 * The way back to ring 0: ring 3 has no instruction that calls the kernel
 * here (int n gives #UD on PVM, SYSCALL stays in ring 3), so it executes
 * ud2 at this known address, and the #UD handler in kernel.c resumes the
 * kernel where user_call left it.
 */
__asm__(".text\n"
	".globl user_finish_ud2\n"
	"user_finish_ud2:\n"
	"\tud2\n");
