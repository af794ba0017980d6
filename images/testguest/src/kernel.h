/*
 * kernel.h - what the ring-0 files (kernel.c, cpu.c) share.
 */
#ifndef KERNEL_H
#define KERNEL_H

#include "guest.h"

#define PTE_US 0x4 /* page table entry bit: user-accessible */

/* What trap_common (entry.S) pushes, from the lowest address up. */
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error;            /* pushed by the stub */
	u64 rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* cpu.c */
void pio_write(u16 port, u8 v);
void uart_init(void);
void putc(char c);
void puts(const char *s);
void puthex(u64 v, int digits);
void putdec(u64 v);
void exit(int status) __attribute__((noreturn));
void setup_cpu(void);
void setup_paging(void);
int make_user_accessible(u64 start, u64 end);
void triple_fault(void) __attribute__((noreturn));
void trap(struct trap_frame *f);
extern int expect_breakpoint;

/* kernel.c */
void run_ring3(u64 work, u64 addr, u64 count);

/* acpi.c: what the ACPI tables say */
struct acpi_info {
	u64 rsdp, xsdt, lapic, ioapic;
	u32 sci, sci_gsi, sci_flags, pm1a_evt, pm1a_cnt, slp_typ_s5;
	u32 ncpus, apic_ids[MAX_CPUS];
};
extern struct acpi_info acpi;
void acpi_init(u64 boot_rsdp, int pvh);
void acpi_poweroff(void) __attribute__((noreturn));
void mode_powerbutton(void) __attribute__((noreturn));

/* smp.c */
void mode_acpi(u64 expect_cpus) __attribute__((noreturn));
u32 lapic_id(void);
void lapic_eoi(void);
void lapic_enable(void);
void ioapic_route(u64 ioapic, u32 gsi, u32 low, u32 dest);
/* irq_handler, when set, sees every vector from 0x20 up first; it returns
 * 1 when it handled the interrupt. */
extern int (*irq_handler)(u64 vector);

/* probe.c */
void mode_cpuid(void) __attribute__((noreturn));

/* pci.c, pit.c */
void mode_pci(void) __attribute__((noreturn));
void mode_msixbench(u64 n) __attribute__((noreturn));
void mode_pit(u64 hz, u64 ticks) __attribute__((noreturn));

/* virtio.c; it reads its options with arg (kernel.c's arg_number) */
void mode_virtio(u64 (*arg)(const char *key, int base, u64 def)) __attribute__((noreturn));

void mode_mxcsr(int boot) __attribute__((noreturn)); /* boot: BOOT_LINUX or BOOT_PVH */

/* migrate.c; kernel.c's e820_end_at is where the usable RAM holding an
 * address ends */
void mode_migrate(u64 rounds, u64 mb, u64 delay, u64 ram_end) __attribute__((noreturn));
u64 e820_end_at(u64 addr);

/* entry.S: ldmxcsr of *p; returns 1 if it raised #GP (trap() resumes at
 * ldmxcsr_try_fault), 0 if it loaded. */
int ldmxcsr_try(const u32 *p);
extern char ldmxcsr_try_insn[], ldmxcsr_try_fault[];

#endif
