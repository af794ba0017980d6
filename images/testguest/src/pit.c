/*
 * pit.c - mode=pit: the 8254 PIT (82C54 data sheet). First counter 2 the
 * way Linux calibrates the TSC (pit_calibrate_tsc): gate it on through
 * port 0x61, load a count in mode 0, latch the count twice (it must go
 * down), wait for OUT2 in port 0x61 bit 5, and read the status back. Then
 * counter 0 as a rate generator (mode 2) at hz= interrupts a second,
 * through I/O APIC pin 0, and count ticks= of them between two boot-timer
 * marks, 0x50 and 0x51, so the VMM's log shows how long they took.
 *
 * Output: "pit ch2 count 0x<first> then 0x<second>", "pit ch2 out2 ok
 * status=0x<status>", "pit ticks=<n> hz=<hz>"; exit 0. The same guest runs
 * against KVM's PIT and govmm's (-pit user).
 */
#include "kernel.h"

#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CONTROL 0x43
#define PORT61 0x61
#define PORT61_GATE2 0x01
#define PORT61_SPEAKER 0x02
#define PORT61_OUT2 0x20
#define PIT_HZ 1193182

/* Control words: counter << 6 | access << 4 | mode << 1. */
#define CW_CH0_MODE2 0x34   /* counter 0, LSB then MSB, mode 2 */
#define CW_CH2_MODE0 0xB0   /* counter 2, LSB then MSB, mode 0 */
#define CW_CH2_LATCH 0x80   /* counter latch command, counter 2 */
#define CW_READBACK_2 0xE8  /* read-back: status only, counter 2 */
#define STATUS_OUT 0x80

#define PIT_VECTOR 0x30
#define IOAPIC_BASE 0xFEC00000UL
#define MARK_START 0x50
#define MARK_END 0x51

static inline void out8(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 in8(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void fail(const char *what) __attribute__((noreturn));
static void fail(const char *what)
{
	puts("CHECK FAILED: pit: ");
	puts(what);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}

static u32 latch_ch2(void)
{
	out8(PIT_CONTROL, CW_CH2_LATCH);
	u32 lo = in8(PIT_CH2);
	return lo | (u32)in8(PIT_CH2) << 8;
}

static volatile u64 ticks;

static int pit_irq(u64 vector)
{
	if (vector == 0xFF) /* the local APIC's spurious vector */
		return 1;
	if (vector != PIT_VECTOR)
		return 0;
	ticks++;
	lapic_eoi();
	return 1;
}

void mode_pit(u64 hz, u64 n)
{
	if (hz < 19 || hz > 5000 || n < 1)
		fail("give hz= from 19 to 5000 and ticks= of at least 1");

	/* Counter 2, as Linux's TSC calibration uses it: 10 ms in mode 0. */
	out8(PORT61, (in8(PORT61) & ~PORT61_SPEAKER) | PORT61_GATE2);
	out8(PIT_CONTROL, CW_CH2_MODE0);
	out8(PIT_CH2, (PIT_HZ / 100) & 0xFF);
	out8(PIT_CH2, (PIT_HZ / 100) >> 8);
	u32 first = latch_ch2(), second = latch_ch2();
	puts("pit ch2 count 0x");
	puthex(first, 4);
	puts(" then 0x");
	puthex(second, 4);
	puts("\n");
	if (second >= first || first > PIT_HZ / 100)
		fail("counter 2 does not count down from its count");
	if (in8(PORT61) & PORT61_OUT2)
		fail("OUT2 is high before the count ran out");
	u64 polls = 0;
	while (!(in8(PORT61) & PORT61_OUT2))
		if (++polls > 100000000)
			fail("OUT2 never went high");
	out8(PIT_CONTROL, CW_READBACK_2);
	u8 status = in8(PIT_CH2);
	puts("pit ch2 out2 ok status=0x");
	puthex(status, 2);
	puts("\n");
	if ((status & 0x3F) != (CW_CH2_MODE0 & 0x3F) || !(status & STATUS_OUT))
		fail("counter 2's read-back status is not mode 0, LSB then MSB, OUT high");

	/* Counter 0: IRQ 0 through I/O APIC pin 0 (KVM's default route for
	 * GSI 0), edge-triggered; the 8259s masked. */
	pio_write(0x21, 0xff);
	pio_write(0xa1, 0xff);
	lapic_enable();
	irq_handler = pit_irq;
	ioapic_route(IOAPIC_BASE, 0, PIT_VECTOR, lapic_id());
	u32 divisor = (u32)((PIT_HZ + hz / 2) / hz);
	out8(PIT_CONTROL, CW_CH0_MODE2);
	out8(PIT_CH0, divisor & 0xFF);
	out8(PIT_CH0, divisor >> 8);
	while (ticks < 1)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	pio_write(BOOT_MARK_PORT, MARK_START);
	while (ticks < 1 + n)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	pio_write(BOOT_MARK_PORT, MARK_END);
	puts("pit ticks=");
	putdec(n);
	puts(" hz=");
	putdec(hz);
	puts("\n");
	exit(EXIT_OK);
}
