/*
 * acpi.c - what the test guest reads of the VMM's ACPI tables, and the
 * modes that use them: acpi (find the tables, count the CPUs, start the
 * APs; smp.c), poweroff and powerbutton.
 *
 * The tables (ACPI Specification 6.5, chapter 5): the RSDP, found through
 * the zero page's acpi_rsdp_addr and by a scan of 0xE0000-0xFFFFF, points
 * to the XSDT, which lists the other tables by address. The FADT names the
 * PM1 registers and the SCI; the MADT lists the local APICs, the I/O APIC
 * and the interrupt source overrides; the DSDT's \_S5 holds the value that
 * powers off.
 */
#include "kernel.h"

struct acpi_info acpi;

/* Little-endian fields at any alignment. */
static u8 r8(u64 a) { return *(volatile u8 *)a; }
static u16 r16(u64 a) { return (u16)(r8(a) | r8(a + 1) << 8); }
static u32 r32(u64 a) { return (u32)r16(a) | (u32)r16(a + 2) << 16; }
static u64 r64(u64 a) { return (u64)r32(a) | (u64)r32(a + 4) << 32; }

static int sum_ok(u64 a, u64 n)
{
	u8 s = 0;
	for (u64 i = 0; i < n; i++)
		s += r8(a + i);
	return s == 0;
}

static int sig_is(u64 a, const char *sig, int n)
{
	for (int i = 0; i < n; i++)
		if (r8(a + i) != (u8)sig[i])
			return 0;
	return 1;
}

static void acpi_fail(const char *what) __attribute__((noreturn));
static void acpi_fail(const char *what)
{
	puts("CHECK FAILED: acpi: ");
	puts(what);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}

/* The RSDP in the BIOS area, on a 16-byte boundary (5.2.5.1), or 0. */
static u64 scan_rsdp(void)
{
	for (u64 a = 0xE0000; a < 0x100000; a += 16)
		if (sig_is(a, "RSD PTR ", 8) && sum_ok(a, 20))
			return a;
	return 0;
}

/* A table from the XSDT by signature, checked, or 0. */
static u64 find_table(const char *sig)
{
	u32 len = r32(acpi.xsdt + 4);
	u32 w = sig_is(acpi.xsdt, "RSDT", 4) ? 4 : 8; /* an RSDT's entries are 32-bit */
	for (u64 e = acpi.xsdt + 36; e + w <= acpi.xsdt + len; e += w) {
		u64 t = w == 4 ? r32(e) : r64(e);
		if (t >= 0x100000000UL)
			acpi_fail("a table lies above 4 GiB");
		if (sig_is(t, sig, 4)) {
			if (!sum_ok(t, r32(t + 4)))
				acpi_fail("a table's checksum is wrong");
			return t;
		}
	}
	return 0;
}

/* \_S5's first package element, SLP_TYPa: search the DSDT's AML for the
 * name _S5_ followed by a package (the usual way a small kernel reads it
 * without an AML interpreter). */
static int read_s5(u64 dsdt)
{
	u32 len = r32(dsdt + 4);
	for (u64 a = dsdt + 36; a + 8 < dsdt + len; a++) {
		if (!sig_is(a, "_S5_", 4) || r8(a + 4) != 0x12) /* PackageOp */
			continue;
		u64 p = a + 5;
		p += (r8(p) >> 6) + 1; /* PkgLength: lead byte plus bits 7-6 more */
		p++;                   /* NumElements */
		u8 op = r8(p);
		if (op == 0x0A) /* BytePrefix */
			return r8(p + 1);
		if (op == 0x00 || op == 0x01) /* ZeroOp, OneOp */
			return op;
		acpi_fail("\\_S5's SLP_TYPa is not a small integer");
	}
	acpi_fail("the DSDT has no \\_S5 package");
	return 0;
}

void acpi_init(u64 boot_rsdp, int pvh)
{
	u64 scanned = scan_rsdp();
	if (!boot_rsdp)
		acpi_fail(pvh ? "PVH's rsdp_paddr is 0" : "the zero page's acpi_rsdp_addr is 0");
	if (scanned != boot_rsdp)
		acpi_fail("the boot protocol's RSDP is not the one in the BIOS area");
	if (!sig_is(scanned, "RSD PTR ", 8) || !sum_ok(scanned, 20))
		acpi_fail("the RSDP's signature or checksum is wrong");
	acpi.rsdp = scanned;
	if (r8(scanned + 15) >= 2) { /* ACPI 2.0: the XSDT, 64-bit entries */
		if (!sum_ok(scanned, 36))
			acpi_fail("the ACPI 2.0 RSDP's extended checksum is wrong");
		acpi.xsdt = r64(scanned + 24);
		if (!sig_is(acpi.xsdt, "XSDT", 4) || !sum_ok(acpi.xsdt, r32(acpi.xsdt + 4)))
			acpi_fail("no XSDT with a good checksum where the RSDP points");
	} else {
		/* ACPI 1.0 (QEMU 7.2's q35 under PVH): the RSDT. govmm gives
		 * ACPI 2.0, which the Linux boot path insists on. */
		if (!pvh)
			acpi_fail("the RSDP is ACPI 1.0: govmm gives an ACPI 2.0 RSDP");
		acpi.xsdt = r32(scanned + 16);
		if (!sig_is(acpi.xsdt, "RSDT", 4) || !sum_ok(acpi.xsdt, r32(acpi.xsdt + 4)))
			acpi_fail("no RSDT with a good checksum where the RSDP points");
	}
	u64 fadt = find_table("FACP"), madt = find_table("APIC");
	if (!fadt || !madt)
		acpi_fail("the XSDT lists no FADT or no MADT");
	acpi.sci = r16(fadt + 46);
	acpi.pm1a_evt = r32(fadt + 56);
	acpi.pm1a_cnt = r32(fadt + 64);
	/* X_DSDT where the FADT is long enough to have it and it is set,
	 * else the 32-bit DSDT field. */
	u64 dsdt = r32(fadt + 4) >= 148 ? r64(fadt + 140) : 0;
	if (!dsdt)
		dsdt = r32(fadt + 40);
	if (!sig_is(dsdt, "DSDT", 4) || !sum_ok(dsdt, r32(dsdt + 4)))
		acpi_fail("no DSDT with a good checksum where the FADT points");
	acpi.slp_typ_s5 = read_s5(dsdt);

	/* The MADT's interrupt controller structures (5.2.12). */
	acpi.lapic = r32(madt + 36);
	acpi.sci_gsi = acpi.sci;
	acpi.sci_flags = 0xF; /* the SCI's default: level, active-low */
	u32 len = r32(madt + 4);
	for (u64 e = madt + 44; e + 2 <= madt + len && r8(e + 1) >= 2; e += r8(e + 1)) {
		switch (r8(e)) {
		case 0: /* processor local APIC: UID, APIC ID, flags */
			if ((r32(e + 4) & 1) && acpi.ncpus < MAX_CPUS)
				acpi.apic_ids[acpi.ncpus++] = r8(e + 3);
			break;
		case 1: /* I/O APIC: ID, reserved, address, GSI base */
			acpi.ioapic = r32(e + 4);
			break;
		case 2: /* interrupt source override: bus, source, GSI, flags */
			if (r8(e + 3) == acpi.sci) {
				acpi.sci_gsi = r32(e + 4);
				acpi.sci_flags = r16(e + 8);
			}
			break;
		}
	}
	puts("acpi: rsdp=0x");
	puthex(acpi.rsdp, 5);
	puts(" (the boot protocol and the BIOS-area scan agree) xsdt=0x");
	puthex(acpi.xsdt, 5);
	puts("\nacpi: madt cpus=");
	putdec(acpi.ncpus);
	puts(" ioapic=0x");
	puthex(acpi.ioapic, 8);
	puts(" sci=");
	putdec(acpi.sci);
	puts(" gsi=");
	putdec(acpi.sci_gsi);
	puts(" pm1a_evt=0x");
	puthex(acpi.pm1a_evt, 4);
	puts(" pm1a_cnt=0x");
	puthex(acpi.pm1a_cnt, 4);
	puts(" s5=");
	putdec(acpi.slp_typ_s5);
	puts("\n");
}

/* ---- power ------------------------------------------------------------------ */

#define PM1_PWRBTN (1 << 8)  /* PM1 status and enable: the power button */
#define PM1_SLP_EN (1 << 13) /* PM1 control: enter the sleep state SLP_TYP */
#define SCI_VECTOR 0x40

static void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static u16 inw(u16 port)
{
	u16 v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Enter S5 (7.4.2): SLP_TYP from \_S5 with SLP_EN, into PM1a_CNT. */
void acpi_poweroff(void)
{
	puts("poweroff: S5 (SLP_TYP=");
	putdec(acpi.slp_typ_s5);
	puts(") through PM1a_CNT\n");
	outw((u16)acpi.pm1a_cnt, (u16)(acpi.slp_typ_s5 << 10 | PM1_SLP_EN));
	acpi_fail("still running after the write that powers off");
}

static volatile int button_pressed, cad_pressed;

#define KBD_VECTOR 0x41
#define KBD_GSI 1       /* ISA IRQ 1, edge-triggered, active high */
#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define I8042_OBF 0x01
#define I8042_RESET 0xfe

static u8 inb(u16 port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* IRQ 1: a scan code (set 1, as the i8042 translates it by default).
 * Ctrl (0x1d), Alt (0x38) and then Delete (0xe0 0x53) is Ctrl-Alt-Del;
 * a code with bit 7 set is a release. */
static void kbd_irq(void)
{
	static int ctrl, alt, ext;
	while (inb(I8042_STATUS) & I8042_OBF) {
		u8 c = inb(I8042_DATA);
		if (c == 0xe0) {
			ext = 1;
			continue;
		}
		int down = !(c & 0x80);
		switch (c & 0x7f) {
		case 0x1d: ctrl = down; break;
		case 0x38: alt = down; break;
		case 0x53:
			if (ext && down && ctrl && alt)
				cad_pressed = 1;
			break;
		}
		ext = 0;
	}
}

/* The SCI's handler: a power-button press clears its status bit; and the
 * keyboard's. */
static int sci_irq(u64 vector)
{
	if (vector == 0xFF) /* the local APIC's spurious vector: nothing to do */
		return 1;
	if (vector == KBD_VECTOR) {
		kbd_irq();
		lapic_eoi();
		return 1;
	}
	if (vector != SCI_VECTOR)
		return 0;
	u16 sts = inw((u16)acpi.pm1a_evt);
	if (sts & PM1_PWRBTN) {
		outw((u16)acpi.pm1a_evt, PM1_PWRBTN); /* write 1 to clear */
		button_pressed = 1;
	}
	lapic_eoi();
	return 1;
}

/* mode=powerbutton: route the SCI through the I/O APIC to this CPU,
 * enable the power button's event, wait for a press (the VMM's
 * PowerButton, govmm's answer to SIGTERM), then power off; or, with the
 * keyboard's IRQ 1 routed too, for Ctrl-Alt-Del typed on the i8042's
 * keyboard (Firecracker's SendCtrlAltDel), then reset through the i8042
 * as Linux does with reboot=k. */
void mode_powerbutton(void)
{
	/* The 8259s stay masked: only the I/O APIC delivers. */
	pio_write(0x21, 0xff);
	pio_write(0xa1, 0xff);
	lapic_enable();
	irq_handler = sci_irq;
	u32 rte = SCI_VECTOR;
	if ((acpi.sci_flags & 3) == 3)
		rte |= 1 << 13; /* active-low */
	if (((acpi.sci_flags >> 2) & 3) != 1)
		rte |= 1 << 15; /* level-triggered (the SCI's default) */
	ioapic_route(acpi.ioapic, acpi.sci_gsi, rte, lapic_id());
	/* PM1a_EN (the second half of the event block): the power button.
	 * A press that came before is still in PM1a_STS and raises the SCI
	 * now. */
	outw((u16)(acpi.pm1a_evt + 2), PM1_PWRBTN);
	ioapic_route(acpi.ioapic, KBD_GSI, KBD_VECTOR, lapic_id());
	kbd_irq(); /* codes queued before the route */
	puts("powerbutton: waiting for the power button\n");
	while (!button_pressed && !cad_pressed)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	if (cad_pressed) {
		puts("ctrl-alt-del pressed: reset\n");
		pio_write(I8042_STATUS, I8042_RESET);
		acpi_fail("still running after the i8042's reset");
	}
	puts("power button pressed\n");
	acpi_poweroff();
}
