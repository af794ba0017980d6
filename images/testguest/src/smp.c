/*
 * smp.c - the local APIC, the I/O APIC and starting the other CPUs.
 *
 * mode=acpi: read the ACPI tables (acpi.c), then start every processor
 * the MADT lists besides this one, one at a time, with INIT, SIPI, SIPI
 * through the local APIC's interrupt command register (Intel SDM vol. 3,
 * 9.4.4 and 11.6.1). Each AP comes up through trampoline.S into ap_main,
 * prints "ap <APIC ID> up" and halts; the boot CPU waits for its word
 * before starting the next.
 */
#include "kernel.h"

/* Local APIC registers (Intel SDM vol. 3, Table 11-1), offsets from the
 * MADT's local APIC address. */
#define LAPIC_ID 0x20
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define SVR_ENABLE 0x100
#define ICR_INIT 0x00004500    /* delivery mode INIT, level assert */
#define ICR_STARTUP 0x00004600 /* delivery mode start-up, level assert */
#define ICR_BUSY (1 << 12)     /* delivery status: send pending */

int (*irq_handler)(u64 vector);

static u64 lapic_base(void) { return acpi.lapic ? acpi.lapic : 0xFEE00000UL; }
static u32 lapic_read(u32 reg) { return *(volatile u32 *)(lapic_base() + reg); }
static void lapic_write(u32 reg, u32 v) { *(volatile u32 *)(lapic_base() + reg) = v; }

u32 lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
void lapic_enable(void) { lapic_write(LAPIC_SVR, SVR_ENABLE | 0xFF); }

/* ioapic_route points I/O APIC input gsi at vector on CPU dest: IOREGSEL
 * at +0 selects redirection entry gsi's two words (0x10 + 2*gsi), IOWIN
 * at +0x10 reads and writes them (82093AA data sheet, 3.2.4). */
void ioapic_route(u64 ioapic, u32 gsi, u32 low, u32 dest)
{
	volatile u32 *sel = (volatile u32 *)ioapic, *win = (volatile u32 *)(ioapic + 0x10);
	*sel = 0x10 + 2 * gsi + 1;
	*win = dest << 24;
	*sel = 0x10 + 2 * gsi;
	*win = low;
}

static void send_ipi(u32 dest, u32 icr)
{
	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	for (int i = 0; i < 1000000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		;
}

static volatile u32 ap_up; /* the APIC ID + 1 of the last AP that came up */
static u8 ap_stacks[MAX_CPUS][2048] __attribute__((aligned(16)));
extern u64 tramp_cr3, tramp_stack, tramp_entry;
extern char trampoline_start[], trampoline_end[];

/* The AP's first C code, on its own stack, interrupts off. */
static void ap_main(void)
{
	u32 id = lapic_id();
	puts("ap ");
	putdec(id);
	puts(" up\n");
	ap_up = id + 1;
	halt_forever();
}

/* The address in the trampoline's copy of one of its symbols. */
static u64 *tramp_slot(u64 *sym)
{
	return (u64 *)(TRAMPOLINE_BASE + ((char *)sym - trampoline_start));
}

static void start_ap(int slot, u32 id)
{
	*tramp_slot(&tramp_stack) = (u64)ap_stacks[slot] + sizeof(ap_stacks[slot]);
	ap_up = 0;
	send_ipi(id, ICR_INIT);
	for (volatile int i = 0; i < 10000; i++) /* the SDM's 10 ms, shortened: KVM needs none */
		;
	send_ipi(id, ICR_STARTUP | TRAMPOLINE_BASE >> 12);
	for (u64 i = 0; ap_up != id + 1 && i < 2000000000UL; i++) {
		if (i == 1000000) /* the second SIPI, if the first was not enough */
			send_ipi(id, ICR_STARTUP | TRAMPOLINE_BASE >> 12);
		__asm__ volatile("pause");
	}
	if (ap_up != id + 1) {
		puts("CHECK FAILED: AP ");
		putdec(id);
		puts(" did not come up\n");
		exit(EXIT_CHECK_FAILED);
	}
}

void mode_acpi(u64 expect_cpus)
{
	if (expect_cpus && acpi.ncpus != expect_cpus) {
		puts("CHECK FAILED: the MADT lists ");
		putdec(acpi.ncpus);
		puts(" CPUs, expect_cpus=");
		putdec(expect_cpus);
		puts("\n");
		exit(EXIT_CHECK_FAILED);
	}
	u32 self = lapic_id();
	puts("bsp ");
	putdec(self);
	puts(" up\n");
	/* The trampoline, with the boot CPU's page tables and ap_main. */
	char *dst = (char *)TRAMPOLINE_BASE;
	for (char *s = trampoline_start; s < trampoline_end; s++)
		*dst++ = *s;
	*tramp_slot(&tramp_cr3) = (u64)pml4;
	*tramp_slot(&tramp_entry) = (u64)ap_main;
	int started = 1;
	for (u32 i = 0; i < acpi.ncpus; i++) {
		if (acpi.apic_ids[i] == self)
			continue;
		start_ap(i, acpi.apic_ids[i]);
		started++;
	}
	puts("smp ok cpus=");
	putdec(started);
	puts("\n");
	exit(EXIT_OK);
}
