/*
 * cvmm.c - the smallest VMM that boots govmm's test guest (guest.elf) on
 * KVM. It is the peer `make bench` compares govmm's exit round trips and
 * startup with: nothing sits between KVM_RUN and the device emulation but a
 * switch statement, so its numbers are the floor for any VMM on this host.
 *
 *   cvmm [-v] [-m MiB] guest.elf ["command line"]
 *
 * Serial output goes to stdout; the boot-timer mark goes to stderr in
 * govmm's format; the exit status is the guest's (images/testguest/README.md).
 * -v adds the time each start-up step took, and when the vCPU started and
 * the guest ended, in the form govmm -v prints them (make bench V=1).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Guest-physical layout (all below the guest's load address, 1 MiB). */
#define GDT_ADDR 0x500
#define ZERO_PAGE 0x7000
#define PML4_ADDR 0x9000
#define PDPT_ADDR 0xa000
#define PD_ADDR 0xb000 /* 4 page directories: 4 GiB of 2 MiB pages */
#define CMDLINE_ADDR 0x20000
#define HOLE_START 0x9fc00 /* the legacy hole, reserved in the e820 map */
#define HOLE_END 0x100000
#define MMIO_START 0xd0000000ULL /* RAM must end below the guest's MMIO */

/* The test guest's devices. */
#define COM1 0x3f8
#define UART_MMIO 0xd0000000ULL
#define EXIT_MMIO 0xd0001000ULL
#define EXIT_PORT 0xf4 /* 0xf4..0xf7: status, mark, scratch, unused */
#define LSR_IDLE 0x60  /* THRE | TEMT: the transmitter is always ready */

static struct timespec start;
static int verbose;
static uint8_t lcr; /* the UART's line control register (bit 7: DLAB) */
static unsigned long scratch;

static void die(const char *what)
{
	fprintf(stderr, "cvmm: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "cvmm: %s\n", what);
	exit(1);
}

static long xioctl(int fd, unsigned long req, void *arg, const char *name)
{
	long r = ioctl(fd, req, arg);
	if (r < 0)
		die(name);
	return r;
}

/* Microseconds since start. */
static long since_start_us(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000;
}

/* The guest ended with status: flush its output and exit with it. */
static void guest_exit(uint8_t status)
{
	fflush(stdout);
	if (verbose)
		fprintf(stderr, "cvmm: guest ended (status %u) after %.3fms\n", status, since_start_us() / 1000.0);
	exit(status);
}

static void mark(uint8_t label)
{
	fprintf(stderr, "boot-timer: mark %u (%#02x) at %ld us since VMM start\n", label, label, since_start_us());
}

/* With -v, the steps of start-up as govmm -v names them: "name=1.234ms". */
static char phases[256];
static long phase_last_us;

static void phase(const char *name)
{
	long now = since_start_us();
	size_t n = strlen(phases);
	snprintf(phases + n, sizeof phases - n, "%s%s=%.3fms", n ? " " : "", name, (now - phase_last_us) / 1000.0);
	phase_last_us = now;
}

/* The debug-exit registers, at port 0xf4 and at EXIT_MMIO. */
static void debug_exit_write(unsigned off, uint8_t v)
{
	switch (off) {
	case 0:
		guest_exit(v);
		break;
	case 1:
		mark(v);
		break;
	case 2:
		scratch++;
		break;
	}
}

/* The 16550's registers as the guest uses them: THR writes print, LSR
 * reads say "ready", the rest is accepted and ignored. */
static void uart_write(unsigned off, uint8_t v)
{
	if (off == 3)
		lcr = v;
	else if (off == 0 && !(lcr & 0x80))
		putchar(v);
}

static uint8_t uart_read(unsigned off)
{
	return off == 5 ? LSR_IDLE : 0;
}

static void handle_io(struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;
		int out = run->io.direction == KVM_EXIT_IO_OUT;
		if (port >= COM1 && port < COM1 + 8) {
			if (out)
				uart_write(port - COM1, data[0]);
			else
				data[0] = uart_read(port - COM1);
		} else if (port >= EXIT_PORT && port < EXIT_PORT + 4) {
			if (out)
				debug_exit_write(port - EXIT_PORT, data[0]);
			else
				memset(data, 0, run->io.size);
		} else if (!out) {
			memset(data, 0xff, run->io.size); /* nothing there */
		}
	}
}

static void handle_mmio(struct kvm_run *run)
{
	uint64_t a = run->mmio.phys_addr;
	if (a >= UART_MMIO && a < UART_MMIO + 8) {
		if (run->mmio.is_write) {
			uart_write(a - UART_MMIO, run->mmio.data[0]);
		} else {
			memset(run->mmio.data, 0, sizeof run->mmio.data);
			run->mmio.data[0] = uart_read(a - UART_MMIO);
		}
	} else if (a >= EXIT_MMIO && a < EXIT_MMIO + 4) {
		if (run->mmio.is_write)
			debug_exit_write(a - EXIT_MMIO, run->mmio.data[0]);
		else
			memset(run->mmio.data, 0, sizeof run->mmio.data);
	} else if (!run->mmio.is_write) {
		memset(run->mmio.data, 0xff, sizeof run->mmio.data);
	}
}

/* Copy guest.elf's PT_LOAD segments to their physical addresses. */
static uint64_t load_elf(const char *path, uint8_t *ram, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die(path);
	uint8_t *f = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED)
		die("mmap the kernel");
	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	if ((size_t)st.st_size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		fail("the kernel is not an x86-64 ELF file: give guest.elf");
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size)
		fail("the ELF program headers run past the end of the file");
	Elf64_Phdr *ph = (Elf64_Phdr *)(f + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size ||
		    ph[i].p_paddr + ph[i].p_memsz > size)
			fail("an ELF segment lies outside the file or outside guest RAM: give more -m");
		memcpy(ram + ph[i].p_paddr, f + ph[i].p_offset, ph[i].p_filesz);
	}
	uint64_t entry = eh->e_entry;
	munmap(f, st.st_size);
	close(fd);
	return entry;
}

/* The Linux zero page (Documentation/arch/x86/zero-page.rst): the e820 map
 * and the command line, the only fields the test guest reads. */
static void zero_page(uint8_t *ram, uint64_t size, const char *cmdline)
{
	uint8_t *zp = ram + ZERO_PAGE;
	struct __attribute__((packed)) { uint64_t addr, size; uint32_t type; } e820[3] = {
		{0, HOLE_START, 1}, {HOLE_START, HOLE_END - HOLE_START, 2}, {HOLE_END, size - HOLE_END, 1},
	};
	memcpy(zp + 0x2d0, e820, sizeof e820);
	zp[0x1e8] = 3;
	strncpy((char *)ram + CMDLINE_ADDR, cmdline, 4095);
	uint32_t p = CMDLINE_ADDR;
	memcpy(zp + 0x228, &p, 4);
}

/* Identity-map 4 GiB with 2 MiB pages; a GDT with the guest's selectors. */
static void page_tables_and_gdt(uint8_t *ram)
{
	uint64_t *pml4 = (uint64_t *)(ram + PML4_ADDR), *pdpt = (uint64_t *)(ram + PDPT_ADDR);
	uint64_t *pd = (uint64_t *)(ram + PD_ADDR);
	pml4[0] = PDPT_ADDR | 3; /* present | writable */
	for (int i = 0; i < 4; i++)
		pdpt[i] = (PD_ADDR + i * 0x1000) | 3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present | writable | 2 MiB page */
	uint64_t *gdt = (uint64_t *)(ram + GDT_ADDR);
	gdt[2] = 0x00af9b000000ffffULL; /* 0x10: 64-bit code, DPL 0 */
	gdt[3] = 0x00cf93000000ffffULL; /* 0x18: data, DPL 0 */
}

static void set_cpu(int sys, int vcpu, uint64_t entry)
{
	struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = {.c.nent = 256};
	xioctl(sys, KVM_GET_SUPPORTED_CPUID, &cpuid, "KVM_GET_SUPPORTED_CPUID");
	xioctl(vcpu, KVM_SET_CPUID2, &cpuid, "KVM_SET_CPUID2");

	struct kvm_sregs s;
	xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
	struct kvm_segment cs = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
				 .present = 1, .s = 1, .l = 1, .g = 1};
	struct kvm_segment ds = cs;
	ds.selector = 0x18, ds.type = 3, ds.l = 0, ds.db = 1;
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = GDT_ADDR, s.gdt.limit = 4 * 8 - 1;
	s.cr0 = 0x80000011; /* PG | ET | PE */
	s.cr3 = PML4_ADDR;
	s.cr4 = 0x20;        /* PAE */
	s.efer = 0x500;      /* LMA | LME */
	xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");

	struct kvm_regs r = {.rip = entry, .rsi = ZERO_PAGE, .rflags = 2};
	xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

int main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &start);
	uint64_t mib = 512;
	int i = 1;
	if (argc > i && !strcmp(argv[i], "-v"))
		verbose = 1, i++;
	if (argc > i + 1 && !strcmp(argv[i], "-m"))
		mib = strtoull(argv[i + 1], NULL, 10), i += 2;
	if (argc - i < 1 || argc - i > 2)
		fail("usage: cvmm [-v] [-m MiB] guest.elf [\"command line\"]");
	uint64_t size = mib << 20;
	if (size < 4 << 20 || size > MMIO_START)
		fail("-m: give between 4 and 3328 MiB (RAM ends below the guest's MMIO at 0xd0000000)");
	setvbuf(stdout, NULL, _IOLBF, 0);

	int sys = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (sys < 0)
		die("open /dev/kvm (is the kvm module loaded, may you use it?)");
	if (ioctl(sys, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fail("KVM_GET_API_VERSION is not 12");
	int vm = xioctl(sys, KVM_CREATE_VM, 0, "KVM_CREATE_VM");

	/* RAM before the interrupt controller, as govmm and Firecracker order
	 * it: after KVM_CREATE_IRQCHIP the memslot ioctl waits out an SRCU
	 * grace period (4-7 ms on a PVM host), before it it does not. */
	uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap guest RAM");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = size, .userspace_addr = (uint64_t)ram};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
	phase("ram");

	/* VMX needs a TSS area for real-mode emulation; others ignore it. */
	if (ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
		xioctl(vm, KVM_SET_TSS_ADDR, (void *)0xfffbd000UL, "KVM_SET_TSS_ADDR");
	xioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	phase("kvm");

	uint64_t entry = load_elf(argv[i], ram, size);
	zero_page(ram, size, argc - i == 2 ? argv[i + 1] : "");
	page_tables_and_gdt(ram);

	int vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	long run_size = xioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap the vCPU's kvm_run");
	set_cpu(sys, vcpu, entry);
	phase("setup");
	if (verbose) {
		fprintf(stderr, "cvmm: start-up: %s\n", phases);
		fprintf(stderr, "cvmm: starting 1 vCPU(s) %.3fms after start\n", since_start_us() / 1000.0);
	}

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			handle_io(run);
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(run);
			break;
		case KVM_EXIT_HLT:
			fail("the guest halted without writing an exit status");
			break;
		case KVM_EXIT_SHUTDOWN:
			fail("the guest shut down (triple fault)");
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "cvmm: KVM internal error, suberror %u\n", run->internal.suberror);
			exit(1);
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "cvmm: VM entry failed, reason %#llx\n",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			exit(1);
		default:
			fprintf(stderr, "cvmm: unexpected exit reason %u\n", run->exit_reason);
			exit(1);
		}
	}
}
