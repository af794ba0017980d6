/*
 * probe.c - the ring-0 halves of mode=cpuid and mode=mxcsr: what the CPU
 * shows the guest (CPUID, ring 0 against ring 3) and whether the SSE
 * control register MXCSR survives ldmxcsr and stmxcsr in ring 0, which on
 * PVM hosts KVM cannot emulate and govmm performs itself.
 */
#include "kernel.h"

/* ---- mode=cpuid -------------------------------------------------------- */

static const u32 cpuid_probes[N_CPUID_PROBES][2] = CPUID_PROBES;

static void cpuid(u32 leaf, u32 subleaf, u32 r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

/* "cpuid ring0 00000001.00 eax=... ebx=... ecx=... edx=..." */
static void print_cpuid(const char *ring, int i, const u32 r[4])
{
	puts("cpuid ");
	puts(ring);
	puts(" ");
	puthex(cpuid_probes[i][0], 8);
	puts(".");
	puthex(cpuid_probes[i][1], 2);
	puts(" eax=");
	puthex(r[0], 8);
	puts(" ebx=");
	puthex(r[1], 8);
	puts(" ecx=");
	puthex(r[2], 8);
	puts(" edx=");
	puthex(r[3], 8);
	puts("\n");
}

void mode_cpuid(void)
{
	u32 r0[N_CPUID_PROBES][4];

	for (int i = 0; i < N_CPUID_PROBES; i++)
		cpuid(cpuid_probes[i][0], cpuid_probes[i][1], r0[i]);
	run_ring3(WORK_CPUID, 0, 0);
	for (int i = 0; i < N_CPUID_PROBES; i++) {
		print_cpuid("ring0", i, r0[i]);
		print_cpuid("ring3", i, uargs.cpuid[i]);
	}
	puts("cpuid done\n");
	exit(EXIT_OK);
}

/* ---- mode=mxcsr -------------------------------------------------------- */

#define CR4_OSFXSR (1UL << 9)      /* SSE instructions allowed */
#define CR4_OSXMMEXCPT (1UL << 10) /* SIMD exceptions as #XM */
#define MSR_GS_BASE 0xc0000101

/* MXCSR values: 0x1f80 is the reset value (all exceptions masked, round
 * to nearest); bits 13-14 pick the rounding, bit 6 is DAZ. */
#define MXCSR_DEFAULT 0x1f80
#define MXCSR_ZERO 0x7f80 /* round toward zero */
#define MXCSR_DAZ 0x1fc0  /* denormals are zero */
#define MXCSR_DOWN 0x3f80 /* round down */
#define MXCSR_RESERVED (MXCSR_DEFAULT | 1 << 16)

u32 mxcsr_word;    /* the operand of the RIP-relative form (global: asm names it) */
static u32 area[4]; /* the SIB and GS forms store here */

static void wrmsr(u32 msr, u64 v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}

/* Each helper uses one addressing form, the way compilers emit them. */
static void ldmxcsr_rsp4(u32 v) /* ldmxcsr 0x4(%rsp): Linux's kernel_fpu_begin */
{
	__asm__ volatile("sub $16, %%rsp\n\t"
			 "movl %0, 4(%%rsp)\n\t"
			 "ldmxcsr 4(%%rsp)\n\t"
			 "add $16, %%rsp"
			 :
			 : "r"(v)
			 : "memory");
}

static u32 stmxcsr_rdi(void) /* stmxcsr (%rdi) */
{
	u32 v;
	__asm__ volatile("stmxcsr (%0)" : : "D"(&v) : "memory");
	return v;
}

static void ldmxcsr_rip(u32 v) /* ldmxcsr mxcsr_word(%rip) */
{
	mxcsr_word = v;
	__asm__ volatile("ldmxcsr mxcsr_word(%%rip)" : : : "memory");
}

static u32 stmxcsr_sib(void) /* stmxcsr (base,index,4) into area[1] */
{
	__asm__ volatile("stmxcsr (%0,%1,4)" : : "r"(area), "r"(1UL) : "memory");
	return area[1];
}

static u32 stmxcsr_gs(void) /* stmxcsr %gs:8 into area[2], GS base = area */
{
	wrmsr(MSR_GS_BASE, (u64)area);
	__asm__ volatile("stmxcsr %%gs:8" : : : "memory");
	wrmsr(MSR_GS_BASE, 0);
	return area[2];
}

static void expect_mxcsr(const char *form, u32 got, u32 want)
{
	if (got == want)
		return;
	puts("CHECK FAILED: mxcsr ");
	puts(form);
	puts(" read 0x");
	puthex(got, 8);
	puts(", want 0x");
	puthex(want, 8);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}

/* cpu_is_qemu_tcg says whether the processor brand string (CPUID
 * 0x80000002-4) is QEMU's software CPU, "QEMU TCG CPU version ...". */
static int cpu_is_qemu_tcg(void)
{
	static const char want[] = "QEMU TCG";
	u32 r[4];
	cpuid(0x80000000, 0, r);
	if (r[0] < 0x80000002)
		return 0;
	cpuid(0x80000002, 0, r); /* the brand string's first 16 bytes */
	const char *brand = (const char *)r;
	for (int i = 0; want[i]; i++)
		if (brand[i] != want[i])
			return 0;
	return 1;
}

void mode_mxcsr(int boot)
{
	u64 cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4));

	ldmxcsr_rsp4(MXCSR_ZERO);
	expect_mxcsr("ldmxcsr [rsp+4], stmxcsr [rdi]", stmxcsr_rdi(), MXCSR_ZERO);
	ldmxcsr_rip(MXCSR_DAZ);
	expect_mxcsr("ldmxcsr [rip+disp], stmxcsr [base+index*4]", stmxcsr_sib(), MXCSR_DAZ);
	expect_mxcsr("stmxcsr gs:[8]", stmxcsr_gs(), MXCSR_DAZ);
	/* Ring 3 reads what ring 0 set, and sets its own. */
	run_ring3(WORK_MXCSR, 0, MXCSR_DOWN);
	expect_mxcsr("ring 3 stmxcsr", uargs.sum, MXCSR_DAZ);
	expect_mxcsr("stmxcsr after ring 3's ldmxcsr", stmxcsr_rdi(), MXCSR_DOWN);
	/* A reserved bit: #GP, and MXCSR unchanged. QEMU's TCG (7.2) loads
	 * it without a fault, so under PVH (QEMU) and on a CPU that TCG
	 * emulates (testvm's machine, where KVM is nested) this is only
	 * reported. */
	u32 bad = MXCSR_RESERVED;
	if (ldmxcsr_try(&bad)) {
		puts("mxcsr reserved bit: #GP\n");
		expect_mxcsr("stmxcsr after the #GP", stmxcsr_rdi(), MXCSR_DOWN);
	} else if (boot == BOOT_PVH || cpu_is_qemu_tcg()) {
		puts("mxcsr reserved bit: loaded without #GP\n");
	} else {
		puts("CHECK FAILED: ldmxcsr of reserved bit 16 did not raise #GP\n");
		exit(EXIT_CHECK_FAILED);
	}
	ldmxcsr_rsp4(MXCSR_DEFAULT);
	puts("mxcsr ok\n");
	exit(EXIT_OK);
}
