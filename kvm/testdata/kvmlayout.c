/*
 * kvmlayout prints what package kvm mirrors from <linux/kvm.h>, as the
 * host's C compiler sees it: struct sizes, alignments and field offsets,
 * ioctl request numbers and constants. One line each, "KEY<TAB>VALUE",
 * the key being the C expression and the value in decimal.
 *
 * abi_header_test.go builds it with gcc, runs it, and compares every line
 * with the Go value of the same key (ABIValues in abi_test.go): a key on
 * one side only is a failure too, so the two lists stay the same.
 *
 *   gcc -o kvmlayout kvmlayout.c && ./kvmlayout
 */
#include <linux/kvm.h>
#include <linux/version.h>
#include <stddef.h>
#include <stdio.h>

#define SIZE(type) printf("sizeof(%s)\t%zu\n", #type, sizeof(type))
#define ALIGN(type) printf("_Alignof(%s)\t%zu\n", #type, _Alignof(type))
#define OFF(type, field) printf("offsetof(%s, %s)\t%zu\n", #type, #field, offsetof(type, field))
#define NUM(macro) printf("%s\t%llu\n", #macro, (unsigned long long)(macro))

int main(void)
{
	/* Which header this is, for the test's log; not compared. */
	printf("# LINUX_VERSION_CODE\t%d.%d.%d\n", LINUX_VERSION_CODE >> 16,
	       (LINUX_VERSION_CODE >> 8) & 0xff, LINUX_VERSION_CODE & 0xff);

	/* Mirrored structs: sizes. */
	SIZE(struct kvm_regs);
	SIZE(struct kvm_segment);
	SIZE(struct kvm_dtable);
	SIZE(struct kvm_sregs);
	SIZE(struct kvm_fpu);
	SIZE(struct kvm_xsave);
	SIZE(struct kvm_msr_entry);
	SIZE(struct kvm_msrs);
	SIZE(struct kvm_cpuid_entry2);
	SIZE(struct kvm_cpuid2);
	SIZE(struct kvm_lapic_state);
	SIZE(struct kvm_vcpu_events);
	SIZE(struct kvm_mp_state);
	SIZE(struct kvm_guest_debug);
	SIZE(struct kvm_clock_data);
	SIZE(struct kvm_irqchip);
	SIZE(struct kvm_pic_state);
	SIZE(struct kvm_pit_channel_state);
	SIZE(struct kvm_pit_state2);
	SIZE(struct kvm_pit_config);
	SIZE(struct kvm_irq_level);
	SIZE(struct kvm_userspace_memory_region);
	SIZE(struct kvm_dirty_log);
	SIZE(struct kvm_irqfd);
	SIZE(struct kvm_ioeventfd);
	SIZE(struct kvm_irq_routing_irqchip);
	SIZE(struct kvm_irq_routing_msi);
	SIZE(struct kvm_irq_routing_entry);
	ALIGN(struct kvm_irq_routing_entry);
	SIZE(struct kvm_irq_routing);
	SIZE(struct kvm_msi);

	/* Mirrored structs: field offsets. */
	OFF(struct kvm_regs, r8);
	OFF(struct kvm_regs, r15);
	OFF(struct kvm_regs, rip);
	OFF(struct kvm_regs, rflags);
	OFF(struct kvm_segment, limit);
	OFF(struct kvm_segment, selector);
	OFF(struct kvm_segment, type);
	OFF(struct kvm_segment, present);
	OFF(struct kvm_segment, dpl);
	OFF(struct kvm_segment, db);
	OFF(struct kvm_segment, s);
	OFF(struct kvm_segment, l);
	OFF(struct kvm_segment, g);
	OFF(struct kvm_segment, avl);
	OFF(struct kvm_segment, unusable);
	OFF(struct kvm_dtable, limit);
	OFF(struct kvm_sregs, ds);
	OFF(struct kvm_sregs, ss);
	OFF(struct kvm_sregs, tr);
	OFF(struct kvm_sregs, ldt);
	OFF(struct kvm_sregs, gdt);
	OFF(struct kvm_sregs, idt);
	OFF(struct kvm_sregs, cr0);
	OFF(struct kvm_sregs, cr2);
	OFF(struct kvm_sregs, cr3);
	OFF(struct kvm_sregs, cr4);
	OFF(struct kvm_sregs, cr8);
	OFF(struct kvm_sregs, efer);
	OFF(struct kvm_sregs, apic_base);
	OFF(struct kvm_sregs, interrupt_bitmap);
	OFF(struct kvm_fpu, fcw);
	OFF(struct kvm_fpu, fsw);
	OFF(struct kvm_fpu, ftwx);
	OFF(struct kvm_fpu, last_opcode);
	OFF(struct kvm_fpu, last_ip);
	OFF(struct kvm_fpu, last_dp);
	OFF(struct kvm_fpu, xmm);
	OFF(struct kvm_fpu, mxcsr);
	OFF(struct kvm_msr_entry, data);
	OFF(struct kvm_cpuid_entry2, index);
	OFF(struct kvm_cpuid_entry2, flags);
	OFF(struct kvm_cpuid_entry2, eax);
	OFF(struct kvm_cpuid_entry2, ebx);
	OFF(struct kvm_cpuid_entry2, ecx);
	OFF(struct kvm_cpuid_entry2, edx);
	OFF(struct kvm_vcpu_events, exception.error_code);
	OFF(struct kvm_vcpu_events, interrupt);
	OFF(struct kvm_vcpu_events, nmi);
	OFF(struct kvm_vcpu_events, sipi_vector);
	OFF(struct kvm_vcpu_events, flags);
	OFF(struct kvm_vcpu_events, smi);
	OFF(struct kvm_vcpu_events, triple_fault);
	OFF(struct kvm_vcpu_events, exception_has_payload);
	OFF(struct kvm_vcpu_events, exception_payload);
	OFF(struct kvm_guest_debug, arch.debugreg);
	OFF(struct kvm_clock_data, flags);
	OFF(struct kvm_clock_data, realtime);
	OFF(struct kvm_clock_data, host_tsc);
	OFF(struct kvm_irqchip, chip);
	OFF(struct kvm_pic_state, last_irr);
	OFF(struct kvm_pic_state, irr);
	OFF(struct kvm_pic_state, imr);
	OFF(struct kvm_pic_state, isr);
	OFF(struct kvm_pic_state, priority_add);
	OFF(struct kvm_pic_state, irq_base);
	OFF(struct kvm_pic_state, read_reg_select);
	OFF(struct kvm_pic_state, poll);
	OFF(struct kvm_pic_state, special_mask);
	OFF(struct kvm_pic_state, init_state);
	OFF(struct kvm_pic_state, auto_eoi);
	OFF(struct kvm_pic_state, rotate_on_auto_eoi);
	OFF(struct kvm_pic_state, special_fully_nested_mode);
	OFF(struct kvm_pic_state, init4);
	OFF(struct kvm_pic_state, elcr);
	OFF(struct kvm_pic_state, elcr_mask);
	OFF(struct kvm_pit_channel_state, latched_count);
	OFF(struct kvm_pit_channel_state, count_latched);
	OFF(struct kvm_pit_channel_state, status_latched);
	OFF(struct kvm_pit_channel_state, status);
	OFF(struct kvm_pit_channel_state, read_state);
	OFF(struct kvm_pit_channel_state, write_state);
	OFF(struct kvm_pit_channel_state, write_latch);
	OFF(struct kvm_pit_channel_state, rw_mode);
	OFF(struct kvm_pit_channel_state, mode);
	OFF(struct kvm_pit_channel_state, bcd);
	OFF(struct kvm_pit_channel_state, gate);
	OFF(struct kvm_pit_channel_state, count_load_time);
	OFF(struct kvm_pit_state2, flags);
	OFF(struct kvm_irq_level, level);
	OFF(struct kvm_userspace_memory_region, flags);
	OFF(struct kvm_userspace_memory_region, guest_phys_addr);
	OFF(struct kvm_userspace_memory_region, memory_size);
	OFF(struct kvm_userspace_memory_region, userspace_addr);
	OFF(struct kvm_dirty_log, dirty_bitmap);
	OFF(struct kvm_irqfd, gsi);
	OFF(struct kvm_irqfd, flags);
	OFF(struct kvm_irqfd, resamplefd);
	OFF(struct kvm_ioeventfd, addr);
	OFF(struct kvm_ioeventfd, len);
	OFF(struct kvm_ioeventfd, fd);
	OFF(struct kvm_ioeventfd, flags);
	OFF(struct kvm_irq_routing_irqchip, pin);
	OFF(struct kvm_irq_routing_msi, address_hi);
	OFF(struct kvm_irq_routing_msi, data);
	OFF(struct kvm_irq_routing_msi, devid);
	OFF(struct kvm_irq_routing_entry, type);
	OFF(struct kvm_irq_routing_entry, flags);
	OFF(struct kvm_irq_routing_entry, u);
	OFF(struct kvm_irq_routing, flags);
	OFF(struct kvm_msi, address_hi);
	OFF(struct kvm_msi, data);
	OFF(struct kvm_msi, flags);
	OFF(struct kvm_msi, devid);

	/* struct kvm_run, the bytes decodeExit reads (x86). */
	OFF(struct kvm_run, immediate_exit);
	OFF(struct kvm_run, exit_reason);
	OFF(struct kvm_run, hw);
	OFF(struct kvm_run, kvm_valid_regs);
	OFF(struct kvm_run, hw.hardware_exit_reason);
	OFF(struct kvm_run, fail_entry.hardware_entry_failure_reason);
	OFF(struct kvm_run, fail_entry.cpu);
	OFF(struct kvm_run, io.direction);
	OFF(struct kvm_run, io.size);
	OFF(struct kvm_run, io.port);
	OFF(struct kvm_run, io.count);
	OFF(struct kvm_run, io.data_offset);
	OFF(struct kvm_run, debug.arch.exception);
	OFF(struct kvm_run, debug.arch.pc);
	OFF(struct kvm_run, debug.arch.dr6);
	OFF(struct kvm_run, debug.arch.dr7);
	OFF(struct kvm_run, mmio.phys_addr);
	OFF(struct kvm_run, mmio.data);
	OFF(struct kvm_run, mmio.len);
	OFF(struct kvm_run, mmio.is_write);
	OFF(struct kvm_run, internal.suberror);
	OFF(struct kvm_run, internal.ndata);
	OFF(struct kvm_run, internal.data);
	OFF(struct kvm_run, system_event.type);
	OFF(struct kvm_run, system_event.ndata);
	OFF(struct kvm_run, system_event.data);

	/* ioctl request numbers. */
	NUM(KVM_GET_API_VERSION);
	NUM(KVM_CREATE_VM);
	NUM(KVM_CHECK_EXTENSION);
	NUM(KVM_GET_VCPU_MMAP_SIZE);
	NUM(KVM_GET_SUPPORTED_CPUID);
	NUM(KVM_CREATE_VCPU);
	NUM(KVM_GET_DIRTY_LOG);
	NUM(KVM_SET_USER_MEMORY_REGION);
	NUM(KVM_SET_TSS_ADDR);
	NUM(KVM_SET_IDENTITY_MAP_ADDR);
	NUM(KVM_CREATE_IRQCHIP);
	NUM(KVM_IRQ_LINE);
	NUM(KVM_GET_IRQCHIP);
	NUM(KVM_SET_IRQCHIP);
	NUM(KVM_SET_GSI_ROUTING);
	NUM(KVM_IRQFD);
	NUM(KVM_CREATE_PIT2);
	NUM(KVM_IOEVENTFD);
	NUM(KVM_SET_CLOCK);
	NUM(KVM_GET_CLOCK);
	NUM(KVM_GET_PIT2);
	NUM(KVM_SET_PIT2);
	NUM(KVM_SIGNAL_MSI);
	NUM(KVM_RUN);
	NUM(KVM_GET_REGS);
	NUM(KVM_SET_REGS);
	NUM(KVM_GET_SREGS);
	NUM(KVM_SET_SREGS);
	NUM(KVM_GET_MSRS);
	NUM(KVM_SET_MSRS);
	NUM(KVM_GET_FPU);
	NUM(KVM_SET_FPU);
	NUM(KVM_GET_LAPIC);
	NUM(KVM_SET_LAPIC);
	NUM(KVM_SET_CPUID2);
	NUM(KVM_GET_CPUID2);
	NUM(KVM_GET_MP_STATE);
	NUM(KVM_SET_MP_STATE);
	NUM(KVM_SET_GUEST_DEBUG);
	NUM(KVM_GET_VCPU_EVENTS);
	NUM(KVM_SET_VCPU_EVENTS);
	NUM(KVM_GET_XSAVE);
	NUM(KVM_SET_XSAVE);

	/* Constants. */
	NUM(KVM_API_VERSION);
	NUM(KVM_EXIT_UNKNOWN);
	NUM(KVM_EXIT_EXCEPTION);
	NUM(KVM_EXIT_IO);
	NUM(KVM_EXIT_HYPERCALL);
	NUM(KVM_EXIT_DEBUG);
	NUM(KVM_EXIT_HLT);
	NUM(KVM_EXIT_MMIO);
	NUM(KVM_EXIT_IRQ_WINDOW_OPEN);
	NUM(KVM_EXIT_SHUTDOWN);
	NUM(KVM_EXIT_FAIL_ENTRY);
	NUM(KVM_EXIT_INTR);
	NUM(KVM_EXIT_INTERNAL_ERROR);
	NUM(KVM_EXIT_SYSTEM_EVENT);
	NUM(KVM_EXIT_X86_RDMSR);
	NUM(KVM_EXIT_X86_WRMSR);
	NUM(KVM_EXIT_DIRTY_RING_FULL);
	NUM(KVM_EXIT_X86_BUS_LOCK);
	NUM(KVM_EXIT_NOTIFY);
	NUM(KVM_EXIT_IO_OUT);
	NUM(KVM_SYSTEM_EVENT_SHUTDOWN);
	NUM(KVM_SYSTEM_EVENT_RESET);
	NUM(KVM_SYSTEM_EVENT_CRASH);
	NUM(KVM_SYSTEM_EVENT_WAKEUP);
	NUM(KVM_SYSTEM_EVENT_SUSPEND);
	NUM(KVM_SYSTEM_EVENT_SEV_TERM);
	NUM(KVM_INTERNAL_ERROR_EMULATION);
	NUM(KVM_INTERNAL_ERROR_SIMUL_EX);
	NUM(KVM_INTERNAL_ERROR_DELIVERY_EV);
	NUM(KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	NUM(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
	NUM(KVM_GUESTDBG_ENABLE);
	NUM(KVM_GUESTDBG_SINGLESTEP);
	NUM(KVM_GUESTDBG_USE_SW_BP);
	NUM(KVM_GUESTDBG_USE_HW_BP);
	NUM(KVM_GUESTDBG_INJECT_DB);
	NUM(KVM_GUESTDBG_INJECT_BP);
	NUM(KVM_GUESTDBG_BLOCKIRQ);
	NUM(KVM_MP_STATE_RUNNABLE);
	NUM(KVM_MP_STATE_UNINITIALIZED);
	NUM(KVM_MP_STATE_INIT_RECEIVED);
	NUM(KVM_MP_STATE_HALTED);
	NUM(KVM_MP_STATE_SIPI_RECEIVED);
	NUM(KVM_MEM_LOG_DIRTY_PAGES);
	NUM(KVM_MEM_READONLY);
	NUM(KVM_IOEVENTFD_FLAG_DATAMATCH);
	NUM(KVM_IOEVENTFD_FLAG_PIO);
	NUM(KVM_IOEVENTFD_FLAG_DEASSIGN);
	NUM(KVM_IRQFD_FLAG_DEASSIGN);
	NUM(KVM_CLOCK_TSC_STABLE);
	NUM(KVM_CLOCK_REALTIME);
	NUM(KVM_CLOCK_HOST_TSC);
	NUM(KVM_PIT_FLAGS_HPET_LEGACY);
	NUM(KVM_PIT_FLAGS_SPEAKER_DATA_ON);
	NUM(KVM_PIT_SPEAKER_DUMMY);
	NUM(KVM_IRQCHIP_PIC_MASTER);
	NUM(KVM_IRQCHIP_PIC_SLAVE);
	NUM(KVM_IRQCHIP_IOAPIC);
	NUM(KVM_IOAPIC_NUM_PINS);
	NUM(KVM_IRQ_ROUTING_IRQCHIP);
	NUM(KVM_IRQ_ROUTING_MSI);
	NUM(KVM_VCPUEVENT_VALID_NMI_PENDING);
	NUM(KVM_VCPUEVENT_VALID_SIPI_VECTOR);
	NUM(KVM_VCPUEVENT_VALID_SHADOW);
	NUM(KVM_VCPUEVENT_VALID_SMM);
	NUM(KVM_VCPUEVENT_VALID_PAYLOAD);
	NUM(KVM_VCPUEVENT_VALID_TRIPLE_FAULT);
	NUM(KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	NUM(KVM_CPUID_FLAG_STATEFUL_FUNC);
	NUM(KVM_CPUID_FLAG_STATE_READ_NEXT);
	/* The binary statistics (stats.go; abiStats in stats_abi_test.go). */
	SIZE(struct kvm_stats_header);
	OFF(struct kvm_stats_header, name_size);
	OFF(struct kvm_stats_header, num_desc);
	OFF(struct kvm_stats_header, id_offset);
	OFF(struct kvm_stats_header, desc_offset);
	OFF(struct kvm_stats_header, data_offset);
	SIZE(struct kvm_stats_desc);
	OFF(struct kvm_stats_desc, exponent);
	OFF(struct kvm_stats_desc, size);
	OFF(struct kvm_stats_desc, offset);
	OFF(struct kvm_stats_desc, bucket_size);
	OFF(struct kvm_stats_desc, name);
	NUM(KVM_GET_STATS_FD);
	NUM(KVM_STATS_TYPE_MASK);
	NUM(KVM_STATS_TYPE_CUMULATIVE);
	NUM(KVM_STATS_TYPE_INSTANT);
	NUM(KVM_STATS_TYPE_PEAK);
	NUM(KVM_STATS_TYPE_LINEAR_HIST);
	NUM(KVM_STATS_TYPE_LOG_HIST);
	NUM(KVM_STATS_UNIT_MASK);
	NUM(KVM_STATS_UNIT_NONE);
	NUM(KVM_STATS_UNIT_BYTES);
	NUM(KVM_STATS_UNIT_SECONDS);
	NUM(KVM_STATS_UNIT_CYCLES);
	NUM(KVM_STATS_UNIT_BOOLEAN);
	NUM(KVM_STATS_BASE_MASK);
	NUM(KVM_STATS_BASE_POW10);
	NUM(KVM_STATS_BASE_POW2);

	/* The vCPU state snapshots carry (savestate.go; abiSaveState in
	 * savestate_abi_test.go). */
	SIZE(struct kvm_xcr);
	OFF(struct kvm_xcr, value);
	SIZE(struct kvm_xcrs);
	OFF(struct kvm_xcrs, flags);
	OFF(struct kvm_xcrs, xcrs);
	SIZE(struct kvm_debugregs);
	OFF(struct kvm_debugregs, dr6);
	OFF(struct kvm_debugregs, dr7);
	OFF(struct kvm_debugregs, flags);
	SIZE(struct kvm_msr_list);
	NUM(KVM_MAX_XCRS);
	NUM(KVM_GET_MSR_INDEX_LIST);
	NUM(KVM_GET_XCRS);
	NUM(KVM_SET_XCRS);
	NUM(KVM_GET_DEBUGREGS);
	NUM(KVM_SET_DEBUGREGS);
	NUM(KVM_GET_TSC_KHZ);
	NUM(KVM_SET_TSC_KHZ);
	NUM(KVM_KVMCLOCK_CTRL);
	SIZE(struct kvm_device_attr);
	OFF(struct kvm_device_attr, group);
	OFF(struct kvm_device_attr, attr);
	OFF(struct kvm_device_attr, addr);
	NUM(KVM_SET_DEVICE_ATTR);
	NUM(KVM_GET_DEVICE_ATTR);
	NUM(KVM_HAS_DEVICE_ATTR);
	NUM(KVM_VCPU_TSC_CTRL);
	NUM(KVM_VCPU_TSC_OFFSET);

	NUM(KVM_CAP_IRQCHIP);
	NUM(KVM_CAP_HLT);
	NUM(KVM_CAP_USER_MEMORY);
	NUM(KVM_CAP_SET_TSS_ADDR);
	NUM(KVM_CAP_EXT_CPUID);
	NUM(KVM_CAP_NR_VCPUS);
	NUM(KVM_CAP_MP_STATE);
	NUM(KVM_CAP_SYNC_MMU);
	NUM(KVM_CAP_SET_GUEST_DEBUG);
	NUM(KVM_CAP_IRQ_ROUTING);
	NUM(KVM_CAP_IRQFD);
	NUM(KVM_CAP_PIT2);
	NUM(KVM_CAP_PIT_STATE2);
	NUM(KVM_CAP_IOEVENTFD);
	NUM(KVM_CAP_SET_IDENTITY_MAP_ADDR);
	NUM(KVM_CAP_ADJUST_CLOCK);
	NUM(KVM_CAP_INTERNAL_ERROR_DATA);
	NUM(KVM_CAP_VCPU_EVENTS);
	NUM(KVM_CAP_DEBUGREGS);
	NUM(KVM_CAP_X86_ROBUST_SINGLESTEP);
	NUM(KVM_CAP_XSAVE);
	NUM(KVM_CAP_XCRS);
	NUM(KVM_CAP_TSC_CONTROL);
	NUM(KVM_CAP_GET_TSC_KHZ);
	NUM(KVM_CAP_MAX_VCPUS);
	NUM(KVM_CAP_TSC_DEADLINE_TIMER);
	NUM(KVM_CAP_KVMCLOCK_CTRL);
	NUM(KVM_CAP_SIGNAL_MSI);
	NUM(KVM_CAP_READONLY_MEM);
	NUM(KVM_CAP_CHECK_EXTENSION_VM);
	NUM(KVM_CAP_SPLIT_IRQCHIP);
	NUM(KVM_CAP_IOEVENTFD_ANY_LENGTH);
	NUM(KVM_CAP_MAX_VCPU_ID);
	NUM(KVM_CAP_IMMEDIATE_EXIT);
	NUM(KVM_CAP_X86_DISABLE_EXITS);
	NUM(KVM_CAP_DIRTY_LOG_RING);
	NUM(KVM_CAP_BINARY_STATS_FD);
	NUM(KVM_CAP_XSAVE2);
	NUM(KVM_CAP_SYSTEM_EVENT_DATA);
	return 0;
}
