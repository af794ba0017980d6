/*
 * cpu.c - ring 0 plumbing of govmm's test guest: serial output through
 * port I/O, exit, the TSS and IDT, user-accessible pages, and trap(), the C
 * handler of every exception and interrupt.
 */
#include "kernel.h"

/* ---- port I/O ---------------------------------------------------------- */

static inline void outb(u16 port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

void pio_write(u16 port, u8 v)
{
	outb(port, v);
}

/* ---- serial (COM1, 16550) ---------------------------------------------- */

void uart_init(void)
{
	outb(COM1 + UART_IER, 0);        /* no interrupts */
	outb(COM1 + UART_LCR, LCR_DLAB); /* divisor latch access */
	outb(COM1 + UART_DLL, 1);        /* 115200 baud (divisor 1) */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1); /* 8 data bits, no parity, 1 stop */
}

void putc(char c)
{
	/* Wait until the transmit holding register is empty (bounded, so a
	 * missing UART cannot hang us). */
	for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & LSR_THRE); i++)
		;
	outb(COM1 + UART_THR, (u8)c);
}

void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

void puthex(u64 v, int digits)
{
	for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
		putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

void putdec(u64 v)
{
	char digits[20];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		putc(digits[--n]);
}

/* ---- exit ---------------------------------------------------------------- */

void exit(int status)
{
	outb(DEBUG_EXIT_PORT, (u8)status);
	/* Still here: there is no debug-exit device. Stop the CPU. */
	halt_forever();
}

/* ---- TSS and IDT ------------------------------------------------------- */

/* The 64-bit TSS (Intel SDM vol. 3, 8.7): only RSP0 matters to us, the
 * stack the CPU switches to when an exception arrives from ring 3. */
struct tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} __attribute__((packed));

static struct tss tss;
static u64 idt[256 * 2]; /* 16 bytes per gate */

struct table_ptr { /* the operand of lgdt/lidt */
	u16 limit;
	u64 base;
} __attribute__((packed));

static void lidt(void *base, u16 limit)
{
	struct table_ptr p = {limit, (u64)base};
	__asm__ volatile("lidt %0" : : "m"(p));
}

void setup_cpu(void)
{
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;

	tss.rsp[0] = (u64)trap_stack_top;
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */
	/* TSS descriptor, 16 bytes: type 0x9 (available 64-bit TSS), P=1. */
	gdt[TSS_SEL / 8] = (limit & 0xffff) | (base & 0xffffff) << 16 |
			   0x89UL << 40 | ((limit >> 16) & 0xf) << 48 |
			   ((base >> 24) & 0xff) << 56;
	gdt[TSS_SEL / 8 + 1] = base >> 32;
	load_segments();

	/* Interrupt gates (type 0xE, P=1, DPL 0) to the 16-byte stubs. */
	for (u64 v = 0; v < 256; v++) {
		u64 addr = (u64)trap_stubs + 16 * v;
		idt[2 * v] = (addr & 0xffff) | (u64)KERNEL_CS << 16 |
			     0x8EUL << 40 | ((addr >> 16) & 0xffff) << 48;
		idt[2 * v + 1] = addr >> 32;
	}
	lidt(idt, sizeof(idt) - 1);
}

/* A triple fault: with an empty IDT, #UD cannot be delivered, nor can the
 * #DF that follows; the CPU shuts down and the VMM sees a shutdown exit. */
void triple_fault(void)
{
	lidt(0, 0);
	__asm__ volatile("ud2");
	halt_forever();
}

/* ---- pages ----------------------------------------------------------------- */

static void load_cr3(void)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"((u64)pml4) : "memory");
}

/* Set the U/S bit on the pages covering [start, end) in our identity map,
 * then reload CR3 to flush the TLB. Returns 0 above 4 GiB (not mapped). */
int make_user_accessible(u64 start, u64 end)
{
	if (end > 0x100000000UL || start > end)
		return 0;
	u64 *pdpt = (u64 *)(pml4[0] & ~0xfffUL);
	for (u64 a = start & ~0xfffUL; a < end; a += 0x1000) {
		if (a < 0x200000) {
			pt0[a >> 12] |= PTE_US; /* the 4 KiB pages */
		} else {
			u64 *dir = (u64 *)(pdpt[a >> 30] & ~0xfffUL);
			dir[(a >> 21) & 511] |= PTE_US; /* a 2 MiB page */
		}
	}
	load_cr3();
	return 1;
}

void setup_paging(void)
{
	make_user_accessible((u64)__user_start, (u64)__user_end);
}

/* ---- traps ----------------------------------------------------------------- */

int expect_breakpoint;

static u64 read_cr2(void)
{
	u64 v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

/* Called by trap_common (entry.S) for every exception and interrupt. */
void trap(struct trap_frame *f)
{
	/* An interrupt a mode asked for (mode=powerbutton's SCI). */
	if (f->vector >= 0x20 && irq_handler && irq_handler(f->vector))
		return;
	/* Ring 3 is done with its work: resume the kernel in user_call. */
	if (f->vector == 6 && f->cs == USER_CS &&
	    f->rip == (u64)user_finish_ud2)
		user_call_return();
	/* mode=mxcsr: ldmxcsr of a reserved bit raised #GP, as it must;
	 * resume where ldmxcsr_try returns 1. */
	if (f->vector == 13 && f->rip == (u64)ldmxcsr_try_insn) {
		f->rip = (u64)ldmxcsr_try_fault;
		return;
	}
	/* mode=int3: the VMM delivered #BP; RIP is already past the int3. */
	if (f->vector == 3 && expect_breakpoint) {
		expect_breakpoint = 0;
		puts("breakpoint ok\n");
		return;
	}
	puts("EXCEPTION vector=");
	putdec(f->vector);
	puts(" error=0x");
	puthex(f->error, 4);
	puts(" rip=0x");
	puthex(f->rip, 16);
	puts(" cs=0x");
	puthex(f->cs, 2);
	if (f->vector == 14) {
		puts(" cr2=0x");
		puthex(read_cr2(), 16);
	}
	puts("\n");
	exit(EXIT_EXCEPTION);
}
