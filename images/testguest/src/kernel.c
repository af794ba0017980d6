/*
 * kernel.c - the ring-0 main program of govmm's test guest: read the boot
 * information (Linux zero page or PVH start_info), print and check it, then
 * run the mode chosen on the command line. README.md is the specification.
 */
#include "kernel.h"

/* ---- boot information, the same whichever way we were booted ------------ */

#define MAX_E820 128
#define E820_RAM 1
#define LEGACY_HOLE_START 0x9fc00UL /* EBDA, VGA, ROMs: not RAM on a PC */
#define LEGACY_HOLE_END 0x100000UL

struct e820_entry {
	u64 addr, size;
	u32 type;
};

static struct {
	u32 n_e820;
	struct e820_entry e820[MAX_E820];
	const char *cmdline;
	u64 initrd_addr, initrd_size;
	u64 acpi_rsdp; /* the zero page's acpi_rsdp_addr, or PVH's rsdp_paddr */
} bi;

/* Little-endian fields at any alignment (x86 allows unaligned loads). */
struct __attribute__((packed)) u32_unaligned { u32 v; };
struct __attribute__((packed)) u64_unaligned { u64 v; };
static u32 rd32(u64 a) { return ((const struct u32_unaligned *)a)->v; }
static u64 rd64(u64 a) { return ((const struct u64_unaligned *)a)->v; }
static u8 rd8(u64 a) { return *(const u8 *)a; }

static void fail(const char *what) __attribute__((noreturn));
static void fail(const char *what)
{
	puts("CHECK FAILED: ");
	puts(what);
	puts("\n");
	exit(EXIT_CHECK_FAILED);
}

/* Linux boot protocol: struct boot_params (Documentation/arch/x86/
 * zero-page.rst), offsets in hex. */
static void read_zero_page(u64 zp)
{
	u32 n = rd8(zp + 0x1e8); /* e820_entries */
	if (n > MAX_E820)
		n = MAX_E820;
	for (u32 i = 0; i < n; i++) {
		u64 e = zp + 0x2d0 + 20 * i; /* e820_table: addr, size, type */
		bi.e820[i] = (struct e820_entry){rd64(e), rd64(e + 8), rd32(e + 16)};
	}
	bi.n_e820 = n;
	bi.cmdline = (const char *)((u64)rd32(zp + 0xc8) << 32 | rd32(zp + 0x228));
	bi.initrd_addr = (u64)rd32(zp + 0xc0) << 32 | rd32(zp + 0x218);
	bi.initrd_size = (u64)rd32(zp + 0xc4) << 32 | rd32(zp + 0x21c);
	bi.acpi_rsdp = rd64(zp + 0x70); /* acpi_rsdp_addr (boot protocol 2.14) */
}

/* PVH: struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
static void read_start_info(u64 si)
{
	if (rd32(si) != 0x336ec578)
		fail("PVH start_info has the wrong magic");
	if (rd32(si + 4) >= 1) { /* version 1 added the memory map */
		u64 map = rd64(si + 40);
		u32 n = rd32(si + 48);
		if (n > MAX_E820)
			n = MAX_E820;
		for (u32 i = 0; i < n; i++) { /* addr, size, type, reserved */
			u64 e = map + 24 * i;
			bi.e820[i] = (struct e820_entry){rd64(e), rd64(e + 8), rd32(e + 16)};
		}
		bi.n_e820 = n;
	}
	bi.cmdline = (const char *)rd64(si + 24);
	bi.acpi_rsdp = rd64(si + 32); /* rsdp_paddr */
	if (rd32(si + 12) >= 1) { /* nr_modules: the first is the initrd */
		u64 mod = rd64(si + 16); /* paddr, size, cmdline, reserved */
		bi.initrd_addr = rd64(mod);
		bi.initrd_size = rd64(mod + 8);
	}
}

/* ---- the command line: "key=value" words separated by spaces ------------- */

/* The value of key, or 0. The value ends at a space or the end. */
static const char *arg(const char *key)
{
	const char *s = bi.cmdline;
	for (u64 i = 0; s[i]; i++) {
		if (i > 0 && s[i - 1] != ' ')
			continue;
		u64 k = 0;
		while (key[k] && s[i + k] == key[k])
			k++;
		if (!key[k] && s[i + k] == '=')
			return s + i + k + 1;
	}
	return 0;
}

static int is_word(const char *v, const char *word)
{
	while (*word && *v == *word)
		v++, word++;
	return !*word && (*v == 0 || *v == ' ');
}

/* Parse a number in base 10 or 16 (an optional 0x for 16); 0 if malformed. */
static int parse(const char *v, int base, u64 *out)
{
	u64 x = 0;
	int n = 0;
	if (base == 16 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
		v += 2;
	for (; *v && *v != ' '; v++, n++) {
		int d;
		if (*v >= '0' && *v <= '9')
			d = *v - '0';
		else if (base == 16 && (*v | 0x20) >= 'a' && (*v | 0x20) <= 'f')
			d = (*v | 0x20) - 'a' + 10;
		else
			return 0;
		x = x * base + d;
	}
	*out = x;
	return n > 0;
}

static u64 arg_number(const char *key, int base, u64 def)
{
	const char *v = arg(key);
	u64 x;
	if (!v)
		return def;
	if (!parse(v, base, &x)) {
		puts("CHECK FAILED: cannot parse ");
		puts(key);
		puts("=\n");
		exit(EXIT_CHECK_FAILED);
	}
	return x;
}

/* ---- ring 3 ------------------------------------------------------------------ */

/* Run one piece of work in ring 3 and come back (user.c, user_call). */
void run_ring3(u64 work, u64 addr, u64 count)
{
	uargs.work = work;
	uargs.addr = addr;
	uargs.count = count;
	uargs.done = 0;
	uargs.status = EXIT_OK;
	user_call((u64)user_main, (u64)user_stack + USER_STACK_SIZE - 8);
}

/* The last work: ring 3 ends the VM itself through MMIO (govmm). We get
 * back here on QEMU (no MMIO devices), so we print its result and exit. */
static void finish_in_ring3(u64 work, u64 count) __attribute__((noreturn));
static void finish_in_ring3(u64 work, u64 count)
{
	run_ring3(work, 0, count);
	if (uargs.use_mmio)
		puts("note: the MMIO debug-exit at 0xd0001000 returned; ring 0 "
		     "repeats ring 3's line and exits through port 0xf4\n");
	if (work == WORK_CHECKSUM) {
		puts("ring3 ok sum=");
		puthex(uargs.sum, 8);
		puts("\n");
	} else {
		puts("mmio done n=");
		putdec(count);
		puts("\n");
	}
	exit((int)uargs.status);
}

/* The end of the usable e820 entry that holds addr, or 0 if none does
 * (mode=migrate's range ends there). */
u64 e820_end_at(u64 addr)
{
	for (u32 i = 0; i < bi.n_e820; i++) {
		u64 a = bi.e820[i].addr, end = a + bi.e820[i].size;
		if (bi.e820[i].type == E820_RAM && addr >= a && addr < end)
			return end;
	}
	return 0;
}

/* ---- main -------------------------------------------------------------------- */

void kmain(u64 boot, u64 info)
{
	uart_init();
	setup_cpu();
	setup_paging();
	if (info >= 0x100000000UL)
		fail("boot information above 4 GiB is not mapped");
	if (boot == BOOT_PVH) {
		read_start_info(info);
		/* QEMU: the BIOS left the PIT ticking on vector 8; mask the
		 * 8259 PICs, ring 3 runs with interrupts enabled. */
		pio_write(0x21, 0xff);
		pio_write(0xa1, 0xff);
		uargs.use_mmio = 0; /* QEMU has no MMIO aliases */
	} else {
		read_zero_page(info);
		uargs.use_mmio = 1;
	}
	if (!bi.cmdline)
		bi.cmdline = "";

	const char *mode = arg("mode");
	if (!mode)
		mode = "check";
	puts("testguest: boot=");
	puts(boot == BOOT_PVH ? "pvh" : "linux");
	puts(" mode=");
	for (const char *m = mode; *m && *m != ' '; m++)
		putc(*m);
	puts("\n");
	if (is_word(mode, "triple"))
		triple_fault();

	/* The boot information. */
	u64 usable = 0, outside_hole = 0;
	for (u32 i = 0; i < bi.n_e820; i++) {
		u64 a = bi.e820[i].addr, end = a + bi.e820[i].size;
		if (bi.e820[i].type != E820_RAM)
			continue;
		usable += end - a;
		/* The part outside [LEGACY_HOLE_START, LEGACY_HOLE_END). */
		if (a < LEGACY_HOLE_START)
			outside_hole += (end < LEGACY_HOLE_START ? end : LEGACY_HOLE_START) - a;
		if (end > LEGACY_HOLE_END)
			outside_hole += end - (a > LEGACY_HOLE_END ? a : LEGACY_HOLE_END);
	}
	puts("e820 usable=");
	putdec(usable);
	puts("\ncmdline=");
	for (int i = 0; i < 4095 && bi.cmdline[i]; i++)
		putc(bi.cmdline[i]);
	puts("\n");

	int have_initrd = bi.initrd_size > 0 && bi.initrd_addr != 0;
	u32 initrd_fnv = 0;
	if (have_initrd) {
		if (!make_user_accessible(bi.initrd_addr, bi.initrd_addr + bi.initrd_size))
			fail("the initrd lies above 4 GiB; the guest maps only 4 GiB");
		run_ring3(WORK_FNV, bi.initrd_addr, bi.initrd_size);
		initrd_fnv = uargs.sum;
		puts("initrd len=");
		putdec(bi.initrd_size);
		puts(" fnv=");
		puthex(initrd_fnv, 8);
		puts("\n");
	} else {
		puts("initrd none\n");
	}

	/* The checks the command line asks for. */
	u64 expect = arg_number("expect_mem", 10, 0);
	if (arg("expect_mem") && outside_hole + (LEGACY_HOLE_END - LEGACY_HOLE_START) != expect) {
		puts("CHECK FAILED: expect_mem=");
		putdec(expect);
		puts(" but e820 usable outside the legacy hole + 0x60400 = ");
		putdec(outside_hole + (LEGACY_HOLE_END - LEGACY_HOLE_START));
		puts("\n");
		exit(EXIT_CHECK_FAILED);
	}
	expect = arg_number("expect_initrd", 16, 0);
	if (arg("expect_initrd") && (!have_initrd || initrd_fnv != (u32)expect)) {
		puts("CHECK FAILED: expect_initrd=");
		puthex(expect, 8);
		puts(have_initrd ? " but initrd fnv=" : " but there is no initrd");
		if (have_initrd)
			puthex(initrd_fnv, 8);
		puts("\n");
		exit(EXIT_CHECK_FAILED);
	}
	puts("checks ok\n");

	/* The mode. */
	u64 n = arg_number("n", 10, 1000);
	if (is_word(mode, "check") || is_word(mode, "int3")) {
		if (is_word(mode, "int3")) {
			expect_breakpoint = 1;
			__asm__ volatile("int3");
			if (expect_breakpoint)
				fail("int3 did not reach the #BP handler");
		}
		finish_in_ring3(WORK_CHECKSUM, arg_number("loops", 10, 1000000));
	} else if (is_word(mode, "pio")) {
		for (u64 i = 0; i < n; i++)
			pio_write(SCRATCH_PORT, (u8)i);
		puts("pio done n=");
		putdec(n);
		puts("\n");
		exit(EXIT_OK);
	} else if (is_word(mode, "mmio")) {
		finish_in_ring3(WORK_MMIO, n);
	} else if (is_word(mode, "spin")) {
		puts("spin: ring 3 loops forever\n");
		run_ring3(WORK_SPIN, 0, 0);
	} else if (is_word(mode, "cpuid")) {
		mode_cpuid();
	} else if (is_word(mode, "mxcsr")) {
		mode_mxcsr((int)boot);
	} else if (is_word(mode, "acpi") || is_word(mode, "poweroff") || is_word(mode, "powerbutton")) {
		acpi_init(bi.acpi_rsdp, boot == BOOT_PVH);
		if (is_word(mode, "poweroff"))
			acpi_poweroff();
		if (is_word(mode, "powerbutton"))
			mode_powerbutton();
		mode_acpi(arg_number("expect_cpus", 10, 0));
	} else if (is_word(mode, "pci")) {
		mode_pci();
	} else if (is_word(mode, "msixbench")) {
		mode_msixbench(n);
	} else if (is_word(mode, "pit")) {
		mode_pit(arg_number("hz", 10, 100), arg_number("ticks", 10, 50));
	} else if (is_word(mode, "migrate")) {
		mode_migrate(arg_number("rounds", 10, 0), arg_number("mb", 10, 32),
			     arg_number("delay", 10, 0), e820_end_at(0x400000));
	} else if (is_word(mode, "virtio")) {
		mode_virtio(arg_number);
	}
	fail("unknown mode= (want check, triple, pio, mmio, int3, spin, cpuid, mxcsr, acpi, poweroff, powerbutton, pci, msixbench, pit, migrate or virtio)");
}
