/*
 * pci.c - mode=pci: find PCI devices through both configuration
 * mechanisms, size and place the test device's BARs, and take its
 * interrupts: MSI-X through the local APIC, and INTx through the I/O APIC.
 *
 * The test device is govmm's pci-testdev (devices/pci/testdev.go): BAR0
 * memory and BAR1 I/O hold the same registers (MAGIC, COUNT, RAISE, ISR,
 * DOORBELL, VECTORS), BAR2 the MSI-X table and pending bits. Everything
 * here runs in ring 0; every access below exits to the VMM.
 *
 * Output, one line each: "pci cf8 00:DD.0 VVVV:DDDD class CCCCCC" for each
 * device mechanism #1 finds, "pci ecam ..." likewise through ECAM,
 * "pci bar<i> <kind> size=0x<size> at 0x<where govmm put it>", "pci caps
 * <ids>", "pci msix vector <v> ok", "pci msix masked: pending, then
 * delivered on unmask", "pci doorbell ok", "pci intx gsi=<n> ok", then
 * "pci ok count=<n>" and exit 0.
 *
 * mode=msixbench n=<n>: the same set-up, then three loops of n, each
 * between two boot-timer marks (port 0xf5) so the VMM's log times them:
 * 0x60-0x61 RAISE 0 (an MMIO exit; govmm sends the MSI through the irqfd)
 * and wait for the interrupt; 0x62-0x63 the same through DOORBELL (an
 * ioeventfd, no exit to govmm's vCPU loop); 0x64-0x65 a write to MAGIC,
 * which does nothing: the bare MMIO exit round trip. Prints "msixbench
 * n=<n>" and exits 0.
 */
#include "kernel.h"

/* PCI configuration: mechanism #1 ports, and where govmm's ECAM window is
 * (boot/layout.go PCIeECAMStart; the MCFG table names it too). */
#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define PCI_ENABLE 0x80000000u
#define ECAM_BASE 0xE0000000UL

/* Header registers (PCI Local Bus 3.0, 6.1). */
#define PCI_COMMAND 0x04
#define PCI_CLASS 0x08
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3C
#define PCI_INT_PIN 0x3D
#define CMD_IO 0x1
#define CMD_MEM 0x2
#define CMD_MASTER 0x4
#define CMD_INTX_DISABLE 0x400
#define CAP_MSIX 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

/* govmm's IDs (devices/pci/hostbridge.go). */
#define GOVMM_VENDOR 0x1af4
#define HOSTBRIDGE_ID 0x10f0
#define TESTDEV_ID 0x10f1

/* Test device registers, and where this guest puts its BARs (inside
 * govmm's 32-bit window and I/O window, away from where govmm put them,
 * so that moving a BAR is tested too). */
#define TD_MAGIC 0x00
#define TD_COUNT 0x04
#define TD_RAISE 0x08
#define TD_ISR 0x0C
#define TD_DOORBELL 0x10
#define TD_VECTORS 0x14
#define TD_MAGIC_VALUE 0x4D564F47u /* "GOVM" */
#define MY_BAR0 0xC2000000UL
#define MY_BAR2 0xC2010000UL
#define MY_BAR1 0xC100

/* Interrupt vectors: MSI-X vector v arrives as MSIX_VECTOR0 + v. */
#define MSIX_VECTOR0 0x40
#define INTX_VECTOR 0x50
#define IOAPIC_BASE 0xFEC00000UL
#define RTE_LEVEL (1 << 15)
#define RTE_ACTIVE_LOW (1 << 13)

static inline void out32(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 in32(u16 port)
{
	u32 v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static u32 cf8_addr(u32 dev, u32 reg) { return PCI_ENABLE | dev << 11 | (reg & 0xFC); }
static u32 cf8_read(u32 dev, u32 reg)
{
	out32(PCI_CONFIG_ADDRESS, cf8_addr(dev, reg));
	return in32(PCI_CONFIG_DATA);
}
static void cf8_write(u32 dev, u32 reg, u32 v)
{
	out32(PCI_CONFIG_ADDRESS, cf8_addr(dev, reg));
	out32(PCI_CONFIG_DATA, v);
}
static volatile u32 *ecam(u32 dev, u32 reg) { return (volatile u32 *)(ECAM_BASE + (dev << 15) + reg); }

static void fail(const char *what) __attribute__((noreturn));
static void fail(const char *what)
{
	puts("CHECK FAILED: pci: ");
	puts(what);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}

static void print_dev(const char *how, u32 dev, u32 id, u32 class)
{
	puts("pci ");
	puts(how);
	puts(" 00:");
	puthex(dev, 2);
	puts(".0 ");
	puthex(id & 0xFFFF, 4);
	puts(":");
	puthex(id >> 16, 4);
	puts(" class ");
	puthex(class >> 8, 6);
	puts("\n");
}

/* Scan bus 0 both ways; return the test device's slot (or fail). */
static u32 enumerate(void)
{
	u32 found_cf8 = 0, found_ecam = 0, testdev = 32;
	for (u32 dev = 0; dev < 32; dev++) {
		u32 id = cf8_read(dev, 0);
		if (id == 0xFFFFFFFF)
			continue;
		found_cf8 |= 1u << dev;
		print_dev("cf8", dev, id, cf8_read(dev, PCI_CLASS));
		if (id == (TESTDEV_ID << 16 | GOVMM_VENDOR) && testdev == 32)
			testdev = dev;
	}
	for (u32 dev = 0; dev < 32; dev++) {
		u32 id = *ecam(dev, 0);
		if (id == 0xFFFFFFFF)
			continue;
		found_ecam |= 1u << dev;
		print_dev("ecam", dev, id, *ecam(dev, PCI_CLASS));
		if (id != cf8_read(dev, 0) || *ecam(dev, PCI_CLASS) != cf8_read(dev, PCI_CLASS))
			fail("ECAM and mechanism #1 read different IDs or class");
	}
	if (found_cf8 != found_ecam)
		fail("ECAM and mechanism #1 found different devices");
	if (cf8_read(0, 0) != (HOSTBRIDGE_ID << 16 | GOVMM_VENDOR) || cf8_read(0, PCI_CLASS) >> 8 != 0x060000)
		fail("00:00.0 is not govmm's host bridge");
	if (testdev == 32)
		fail("no test device (1af4:10f1): run govmm with -device pci-testdev");
	return testdev;
}

/* Size BAR i the way an OS does, with decoding off: write all-ones and
 * read back the mask. Returns the size; *flags gets the type bits. */
static u64 size_bar(u32 dev, u32 i, u32 *flags)
{
	u32 reg = PCI_BAR0 + 4 * i, orig = *ecam(dev, reg);
	cf8_write(dev, reg, 0xFFFFFFFF);
	u32 mask = cf8_read(dev, reg);
	cf8_write(dev, reg, orig);
	*flags = orig & (orig & 1 ? 0x3 : 0xF);
	u64 m = mask & ~(u64)(orig & 1 ? 0x3 : 0xF);
	if ((orig & 0x7) == 0x4) { /* 64-bit memory: the upper half too */
		u32 hi = *ecam(dev, reg + 4);
		*ecam(dev, reg + 4) = 0xFFFFFFFF;
		m |= (u64)*ecam(dev, reg + 4) << 32;
		*ecam(dev, reg + 4) = hi;
	} else if (orig & 1) {
		m |= 0xFFFFFFFFFFFF0000UL; /* I/O: only 16 bits of address on x86 */
	} else {
		m |= 0xFFFFFFFF00000000UL;
	}
	return m ? ~m + 1 : 0;
}

static volatile u32 irqs[256];
static u64 bar0; /* the test device's registers, where this guest put them */

static int pci_irq(u64 vector)
{
	if (vector == 0xFF) /* the local APIC's spurious vector */
		return 1;
	if (vector < MSIX_VECTOR0 || vector > INTX_VECTOR)
		return 0;
	irqs[vector]++;
	if (vector == INTX_VECTOR) /* level: deassert before the EOI */
		*(volatile u32 *)(bar0 + TD_ISR) = 1;
	lapic_eoi();
	return 1;
}

/* Wait for interrupt vector to have come n times in all. */
static void wait_irq(u32 vector, u32 n)
{
	while (irqs[vector] < n)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* Open an interrupt window long enough to take what is pending. */
static void take_pending(void)
{
	__asm__ volatile("sti; nop; nop; nop; cli" ::: "memory");
}

/* place_bars sizes the test device's BARs with decoding off, checks and
 * prints them, and puts them where this guest wants them; decoding and
 * bus mastering on. */
static void place_bars(u32 dev);

/* msix_setup enables the local APIC and MSI-X with every vector to this
 * CPU; returns the table. */
static volatile u32 *msix_setup(u32 dev, u32 *msix_cap, u32 *pba_off);

void mode_pci(void)
{
	u32 dev = enumerate();
	place_bars(dev);
	volatile u32 *regs = (volatile u32 *)bar0;
	u32 nvec = in32(MY_BAR1 + TD_VECTORS), msix, pba;
	volatile u32 *tab = msix_setup(dev, &msix, &pba);
	volatile u32 *pending = (volatile u32 *)(MY_BAR2 + pba);
	u32 ctl = *ecam(dev, msix) >> 16;
	for (u32 v = 0; v < nvec; v++) {
		regs[TD_RAISE / 4] = v;
		wait_irq(MSIX_VECTOR0 + v, 1);
		puts("pci msix vector ");
		putdec(v);
		puts(" ok\n");
	}
	/* A masked vector's interrupt waits in the PBA until it is unmasked. */
	tab[4 * 3 + 3] = 1;
	regs[TD_RAISE / 4] = 3;
	take_pending();
	if (irqs[MSIX_VECTOR0 + 3] != 1 || !(pending[0] & (1 << 3)))
		fail("a masked vector was delivered, or its pending bit is clear");
	tab[4 * 3 + 3] = 0;
	wait_irq(MSIX_VECTOR0 + 3, 2);
	if (pending[0] & (1 << 3))
		fail("the pending bit stayed set after the vector was unmasked");
	puts("pci msix masked: pending, then delivered on unmask\n");
	/* The doorbell raises vector 0 (through an ioeventfd where KVM has
	 * them: this write need not exit to govmm's vCPU loop). */
	regs[TD_DOORBELL / 4] = 1;
	wait_irq(MSIX_VECTOR0, 2);
	puts("pci doorbell ok\n");

	/* INTx: MSI-X off, the pin routed through the I/O APIC, level-
	 * triggered and active-low, at the GSI govmm wrote in the interrupt
	 * line register (as firmware tells the OS). */
	*ecam(dev, msix) = (ctl & ~MSIX_ENABLE) << 16 | (*ecam(dev, msix) & 0xFFFF);
	u32 line = cf8_read(dev, PCI_INT_LINE) & 0xFF, pin = (cf8_read(dev, PCI_INT_LINE) >> 8) & 0xFF;
	if (pin != 1 || line < 16 || line > 23)
		fail("the test device's INTx pin is not INTA on a GSI from 16 to 23");
	ioapic_route(IOAPIC_BASE, line, INTX_VECTOR | RTE_LEVEL | RTE_ACTIVE_LOW, lapic_id());
	regs[TD_RAISE / 4] = 0;
	wait_irq(INTX_VECTOR, 1);
	if (regs[TD_ISR / 4] != 0)
		fail("INTx still asserted after the handler acknowledged it");
	/* With INTx disabled in the command register, nothing comes. */
	*ecam(dev, PCI_COMMAND) = CMD_IO | CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE;
	regs[TD_RAISE / 4] = 0;
	take_pending();
	if (irqs[INTX_VECTOR] != 1)
		fail("INTx came with the command register's INTx disable set");
	*ecam(dev, PCI_COMMAND) = CMD_IO | CMD_MEM | CMD_MASTER;
	wait_irq(INTX_VECTOR, 2);
	puts("pci intx gsi=");
	putdec(line);
	puts(" ok\n");

	puts("pci ok count=");
	putdec(regs[TD_COUNT / 4]);
	puts("\n");
	exit(EXIT_OK);
}

void mode_msixbench(u64 n)
{
	u32 dev = enumerate();
	place_bars(dev);
	volatile u32 *regs = (volatile u32 *)bar0;
	u32 msix, pba;
	msix_setup(dev, &msix, &pba);
	regs[TD_RAISE / 4] = 0; /* the first one programs the route */
	wait_irq(MSIX_VECTOR0, 1);
	pio_write(BOOT_MARK_PORT, 0x60);
	for (u64 i = 0; i < n; i++) {
		regs[TD_RAISE / 4] = 0;
		wait_irq(MSIX_VECTOR0, 2 + i);
	}
	pio_write(BOOT_MARK_PORT, 0x61);
	pio_write(BOOT_MARK_PORT, 0x62);
	for (u64 i = 0; i < n; i++) {
		regs[TD_DOORBELL / 4] = 1;
		wait_irq(MSIX_VECTOR0, 2 + n + i);
	}
	pio_write(BOOT_MARK_PORT, 0x63);
	pio_write(BOOT_MARK_PORT, 0x64);
	for (u64 i = 0; i < n; i++)
		regs[TD_MAGIC / 4] = 0;
	pio_write(BOOT_MARK_PORT, 0x65);
	puts("msixbench n=");
	putdec(n);
	puts("\n");
	exit(EXIT_OK);
}

static void place_bars(u32 dev)
{
	/* BARs: sizes and types, with decoding off. */
	cf8_write(dev, PCI_COMMAND, 0);
	static const char *kinds[] = {"mem32", "io", "mem64"};
	static const u64 want_size[] = {0x1000, 0x20, 0x2000};
	for (u32 i = 0; i < 3; i++) {
		u32 flags;
		u64 at = *ecam(dev, PCI_BAR0 + 4 * i);
		u64 size = size_bar(dev, i, &flags);
		at &= flags & 1 ? ~3UL : ~0xFUL;
		if (i == 2)
			at |= (u64)*ecam(dev, PCI_BAR0 + 12) << 32;
		puts("pci bar");
		putdec(i);
		puts(" ");
		puts(kinds[i]);
		puts(" size=0x");
		puthex(size, 8);
		puts(" at 0x");
		puthex(at, 9);
		puts("\n");
		if (size != want_size[i])
			fail("a BAR's size is not the test device's");
	}
	/* Place them: BAR0 and BAR2 (64-bit, upper half 0) in memory, BAR1
	 * in I/O space; then turn decoding and bus mastering on through
	 * ECAM. */
	cf8_write(dev, PCI_BAR0, MY_BAR0);
	cf8_write(dev, PCI_BAR0 + 4, MY_BAR1);
	*ecam(dev, PCI_BAR0 + 8) = MY_BAR2 | 0x4;
	*ecam(dev, PCI_BAR0 + 12) = 0;
	*ecam(dev, PCI_COMMAND) = CMD_IO | CMD_MEM | CMD_MASTER;
	bar0 = MY_BAR0;
	volatile u32 *regs = (volatile u32 *)bar0;
	if (regs[TD_MAGIC / 4] != TD_MAGIC_VALUE || in32(MY_BAR1 + TD_MAGIC) != TD_MAGIC_VALUE)
		fail("MAGIC does not read \"GOVM\" through BAR0 and BAR1 where the guest put them");
}

static volatile u32 *msix_setup(u32 dev, u32 *msix_cap, u32 *pba_off)
{
	u32 nvec = in32(MY_BAR1 + TD_VECTORS);
	/* Capabilities: a vendor-specific one, then MSI-X. */
	u32 msix = 0;
	puts("pci caps");
	for (u32 p = *ecam(dev, PCI_CAP_PTR) & 0xFF, n = 0; p && n < 48; n++) {
		u32 hdr = *ecam(dev, p & 0xFC) >> (8 * (p & 3));
		puts(" ");
		puthex(hdr & 0xFF, 2);
		if ((hdr & 0xFF) == CAP_MSIX)
			msix = p;
		p = (hdr >> 8) & 0xFF;
	}
	puts("\n");
	if (!msix)
		fail("no MSI-X capability");
	u32 ctl = *ecam(dev, msix) >> 16;
	u32 table = *ecam(dev, msix + 4), pba = *ecam(dev, msix + 8);
	if ((ctl & 0x7FF) + 1 != nvec || (table & 7) != 2 || (pba & 7) != 2)
		fail("MSI-X table size or BIRs are not the test device's");
	volatile u32 *tab = (volatile u32 *)(MY_BAR2 + (table & ~7u));

	/* MSI-X: every vector to this CPU at MSIX_VECTOR0 + v. */
	pio_write(0x21, 0xff); /* the 8259s stay masked */
	pio_write(0xa1, 0xff);
	lapic_enable();
	irq_handler = pci_irq;
	for (u32 v = 0; v < nvec; v++) {
		tab[4 * v + 0] = 0xFEE00000u | lapic_id() << 12;
		tab[4 * v + 1] = 0;
		tab[4 * v + 2] = MSIX_VECTOR0 + v;
		tab[4 * v + 3] = 0; /* unmasked */
	}
	*ecam(dev, msix) = (ctl | MSIX_ENABLE) << 16 | (*ecam(dev, msix) & 0xFFFF);
	*msix_cap = msix;
	*pba_off = pba & ~7u;
	return tab;
}
