package kvm

import "unsafe"

// ABIValue is one fact of the KVM ABI as this package has it: Key is the C
// expression testdata/kvmlayout.c prints for it from <linux/kvm.h>, Go the
// value here.
type ABIValue struct {
	Key string
	Go  uint64
}

// ABIValues lists every mirrored struct's size and field offsets, the
// struct kvm_run offsets decodeExit reads, every ioctl request number and
// every named constant of this package, keyed as testdata/kvmlayout.c
// prints them. A key may appear twice when two Go values must both equal
// it (a struct's size and a word count derived from it). The external
// test TestABIMatchesHeader compares them with the host's header; it is
// exported for that test only.
func ABIValues() []ABIValue {
	var (
		r   Regs
		seg Segment
		dt  DTable
		s   Sregs
		fpu FPU
		msr MSREntry
		c   CPUIDEntry
		ev  VCPUEvents
		gd  GuestDebug
		cd  ClockData
		ic  IRQChip
		pic PICState
		pc  PITChannelState
		ps  PITState2
		lv  irqLevel
		umr userMemoryRegion
		dl  dirtyLog
		fd  irqfd
		ioe ioeventfd
		rc  irqRoutingIRQChip
		rm  irqRoutingMSI
		re  irqRoutingEntry
		rh  irqRoutingHeader
		ms  msi
	)
	size := func(c string, v uintptr) ABIValue { return ABIValue{"sizeof(struct " + c + ")", uint64(v)} }
	off := func(c, field string, v uintptr) ABIValue {
		return ABIValue{"offsetof(struct " + c + ", " + field + ")", uint64(v)}
	}
	num := func(c string, v uint64) ABIValue { return ABIValue{c, v} }
	values := []ABIValue{
		size("kvm_regs", unsafe.Sizeof(r)),
		size("kvm_segment", unsafe.Sizeof(seg)),
		size("kvm_dtable", unsafe.Sizeof(dt)),
		size("kvm_sregs", unsafe.Sizeof(s)),
		size("kvm_fpu", unsafe.Sizeof(fpu)),
		size("kvm_xsave", unsafe.Sizeof(XSAVE{})),
		size("kvm_msr_entry", unsafe.Sizeof(msr)),
		size("kvm_msrs", unsafe.Sizeof(msrsHeader{})),
		size("kvm_cpuid_entry2", unsafe.Sizeof(c)),
		size("kvm_cpuid2", unsafe.Sizeof(cpuid2Header{})),
		size("kvm_lapic_state", unsafe.Sizeof(LAPICState{})),
		size("kvm_vcpu_events", unsafe.Sizeof(ev)),
		size("kvm_mp_state", unsafe.Sizeof(MPState{})),
		size("kvm_guest_debug", unsafe.Sizeof(gd)),
		size("kvm_clock_data", unsafe.Sizeof(cd)),
		size("kvm_irqchip", unsafe.Sizeof(ic)),
		size("kvm_pic_state", unsafe.Sizeof(pic)),
		size("kvm_pit_channel_state", unsafe.Sizeof(pc)),
		size("kvm_pit_state2", unsafe.Sizeof(ps)),
		size("kvm_pit_config", unsafe.Sizeof(pitConfig{})),
		size("kvm_irq_level", unsafe.Sizeof(lv)),
		size("kvm_userspace_memory_region", unsafe.Sizeof(umr)),
		size("kvm_dirty_log", unsafe.Sizeof(dl)),
		size("kvm_irqfd", unsafe.Sizeof(fd)),
		size("kvm_ioeventfd", unsafe.Sizeof(ioe)),
		size("kvm_irq_routing_irqchip", unsafe.Sizeof(rc)),
		size("kvm_irq_routing_msi", unsafe.Sizeof(rm)),
		size("kvm_irq_routing_entry", unsafe.Sizeof(re)),
		{"_Alignof(struct kvm_irq_routing_entry)", uint64(unsafe.Alignof(re))},
		size("kvm_irq_routing", unsafe.Sizeof(rh)),
		size("kvm_msi", unsafe.Sizeof(ms)),
		// The flexible-array helpers count words, not bytes.
		size("kvm_cpuid_entry2", cpuidEntryWords*4),
		size("kvm_cpuid2", cpuid2HeadWords*4),
		size("kvm_msr_entry", msrEntryWords*8),
		size("kvm_msrs", msrsHeadWords*8),
		size("kvm_irq_routing", irqRoutingHeadWords*8),
		size("kvm_irq_routing_entry", irqRoutingEntryWords*8),

		off("kvm_regs", "r8", unsafe.Offsetof(r.R8)),
		off("kvm_regs", "r15", unsafe.Offsetof(r.R15)),
		off("kvm_regs", "rip", unsafe.Offsetof(r.RIP)),
		off("kvm_regs", "rflags", unsafe.Offsetof(r.RFLAGS)),
		off("kvm_segment", "limit", unsafe.Offsetof(seg.Limit)),
		off("kvm_segment", "selector", unsafe.Offsetof(seg.Selector)),
		off("kvm_segment", "type", unsafe.Offsetof(seg.Type)),
		off("kvm_segment", "present", unsafe.Offsetof(seg.Present)),
		off("kvm_segment", "dpl", unsafe.Offsetof(seg.DPL)),
		off("kvm_segment", "db", unsafe.Offsetof(seg.DB)),
		off("kvm_segment", "s", unsafe.Offsetof(seg.S)),
		off("kvm_segment", "l", unsafe.Offsetof(seg.L)),
		off("kvm_segment", "g", unsafe.Offsetof(seg.G)),
		off("kvm_segment", "avl", unsafe.Offsetof(seg.AVL)),
		off("kvm_segment", "unusable", unsafe.Offsetof(seg.Unusable)),
		off("kvm_dtable", "limit", unsafe.Offsetof(dt.Limit)),
		off("kvm_sregs", "ds", unsafe.Offsetof(s.DS)),
		off("kvm_sregs", "ss", unsafe.Offsetof(s.SS)),
		off("kvm_sregs", "tr", unsafe.Offsetof(s.TR)),
		off("kvm_sregs", "ldt", unsafe.Offsetof(s.LDT)),
		off("kvm_sregs", "gdt", unsafe.Offsetof(s.GDT)),
		off("kvm_sregs", "idt", unsafe.Offsetof(s.IDT)),
		off("kvm_sregs", "cr0", unsafe.Offsetof(s.CR0)),
		off("kvm_sregs", "cr2", unsafe.Offsetof(s.CR2)),
		off("kvm_sregs", "cr3", unsafe.Offsetof(s.CR3)),
		off("kvm_sregs", "cr4", unsafe.Offsetof(s.CR4)),
		off("kvm_sregs", "cr8", unsafe.Offsetof(s.CR8)),
		off("kvm_sregs", "efer", unsafe.Offsetof(s.EFER)),
		off("kvm_sregs", "apic_base", unsafe.Offsetof(s.APICBase)),
		off("kvm_sregs", "interrupt_bitmap", unsafe.Offsetof(s.InterruptBitmap)),
		off("kvm_fpu", "fcw", unsafe.Offsetof(fpu.FCW)),
		off("kvm_fpu", "fsw", unsafe.Offsetof(fpu.FSW)),
		off("kvm_fpu", "ftwx", unsafe.Offsetof(fpu.FTWX)),
		off("kvm_fpu", "last_opcode", unsafe.Offsetof(fpu.LastOpcode)),
		off("kvm_fpu", "last_ip", unsafe.Offsetof(fpu.LastIP)),
		off("kvm_fpu", "last_dp", unsafe.Offsetof(fpu.LastDP)),
		off("kvm_fpu", "xmm", unsafe.Offsetof(fpu.XMM)),
		off("kvm_fpu", "mxcsr", unsafe.Offsetof(fpu.MXCSR)),
		off("kvm_msr_entry", "data", unsafe.Offsetof(msr.Data)),
		off("kvm_cpuid_entry2", "index", unsafe.Offsetof(c.Index)),
		off("kvm_cpuid_entry2", "flags", unsafe.Offsetof(c.Flags)),
		off("kvm_cpuid_entry2", "eax", unsafe.Offsetof(c.EAX)),
		off("kvm_cpuid_entry2", "ebx", unsafe.Offsetof(c.EBX)),
		off("kvm_cpuid_entry2", "ecx", unsafe.Offsetof(c.ECX)),
		off("kvm_cpuid_entry2", "edx", unsafe.Offsetof(c.EDX)),
		off("kvm_vcpu_events", "exception.error_code", unsafe.Offsetof(ev.Exception)+unsafe.Offsetof(ev.Exception.ErrorCode)),
		off("kvm_vcpu_events", "interrupt", unsafe.Offsetof(ev.Interrupt)),
		off("kvm_vcpu_events", "nmi", unsafe.Offsetof(ev.NMI)),
		off("kvm_vcpu_events", "sipi_vector", unsafe.Offsetof(ev.SIPIVector)),
		off("kvm_vcpu_events", "flags", unsafe.Offsetof(ev.Flags)),
		off("kvm_vcpu_events", "smi", unsafe.Offsetof(ev.SMI)),
		off("kvm_vcpu_events", "triple_fault", unsafe.Offsetof(ev.TripleFault)),
		off("kvm_vcpu_events", "exception_has_payload", unsafe.Offsetof(ev.ExceptionHasPayload)),
		off("kvm_vcpu_events", "exception_payload", unsafe.Offsetof(ev.ExceptionPayload)),
		off("kvm_guest_debug", "arch.debugreg", unsafe.Offsetof(gd.DebugReg)),
		off("kvm_clock_data", "flags", unsafe.Offsetof(cd.Flags)),
		off("kvm_clock_data", "realtime", unsafe.Offsetof(cd.Realtime)),
		off("kvm_clock_data", "host_tsc", unsafe.Offsetof(cd.HostTSC)),
		off("kvm_irqchip", "chip", unsafe.Offsetof(ic.Chip)),
		off("kvm_pic_state", "last_irr", unsafe.Offsetof(pic.LastIRR)),
		off("kvm_pic_state", "irr", unsafe.Offsetof(pic.IRR)),
		off("kvm_pic_state", "imr", unsafe.Offsetof(pic.IMR)),
		off("kvm_pic_state", "isr", unsafe.Offsetof(pic.ISR)),
		off("kvm_pic_state", "priority_add", unsafe.Offsetof(pic.PriorityAdd)),
		off("kvm_pic_state", "irq_base", unsafe.Offsetof(pic.IRQBase)),
		off("kvm_pic_state", "read_reg_select", unsafe.Offsetof(pic.ReadRegSelect)),
		off("kvm_pic_state", "poll", unsafe.Offsetof(pic.Poll)),
		off("kvm_pic_state", "special_mask", unsafe.Offsetof(pic.SpecialMask)),
		off("kvm_pic_state", "init_state", unsafe.Offsetof(pic.InitState)),
		off("kvm_pic_state", "auto_eoi", unsafe.Offsetof(pic.AutoEOI)),
		off("kvm_pic_state", "rotate_on_auto_eoi", unsafe.Offsetof(pic.RotateOnAutoEOI)),
		off("kvm_pic_state", "special_fully_nested_mode", unsafe.Offsetof(pic.SpecialFullyNestedMode)),
		off("kvm_pic_state", "init4", unsafe.Offsetof(pic.Init4)),
		off("kvm_pic_state", "elcr", unsafe.Offsetof(pic.ELCR)),
		off("kvm_pic_state", "elcr_mask", unsafe.Offsetof(pic.ELCRMask)),
		off("kvm_pit_channel_state", "latched_count", unsafe.Offsetof(pc.LatchedCount)),
		off("kvm_pit_channel_state", "count_latched", unsafe.Offsetof(pc.CountLatched)),
		off("kvm_pit_channel_state", "status_latched", unsafe.Offsetof(pc.StatusLatched)),
		off("kvm_pit_channel_state", "status", unsafe.Offsetof(pc.Status)),
		off("kvm_pit_channel_state", "read_state", unsafe.Offsetof(pc.ReadState)),
		off("kvm_pit_channel_state", "write_state", unsafe.Offsetof(pc.WriteState)),
		off("kvm_pit_channel_state", "write_latch", unsafe.Offsetof(pc.WriteLatch)),
		off("kvm_pit_channel_state", "rw_mode", unsafe.Offsetof(pc.RWMode)),
		off("kvm_pit_channel_state", "mode", unsafe.Offsetof(pc.Mode)),
		off("kvm_pit_channel_state", "bcd", unsafe.Offsetof(pc.BCD)),
		off("kvm_pit_channel_state", "gate", unsafe.Offsetof(pc.Gate)),
		off("kvm_pit_channel_state", "count_load_time", unsafe.Offsetof(pc.CountLoadTime)),
		off("kvm_pit_state2", "flags", unsafe.Offsetof(ps.Flags)),
		off("kvm_irq_level", "level", unsafe.Offsetof(lv.Level)),
		off("kvm_userspace_memory_region", "flags", unsafe.Offsetof(umr.Flags)),
		off("kvm_userspace_memory_region", "guest_phys_addr", unsafe.Offsetof(umr.GuestPhysAddr)),
		off("kvm_userspace_memory_region", "memory_size", unsafe.Offsetof(umr.MemorySize)),
		off("kvm_userspace_memory_region", "userspace_addr", unsafe.Offsetof(umr.UserspaceAddr)),
		off("kvm_dirty_log", "dirty_bitmap", unsafe.Offsetof(dl.Bitmap)),
		off("kvm_irqfd", "gsi", unsafe.Offsetof(fd.GSI)),
		off("kvm_irqfd", "flags", unsafe.Offsetof(fd.Flags)),
		off("kvm_irqfd", "resamplefd", unsafe.Offsetof(fd.ResampleFD)),
		off("kvm_ioeventfd", "addr", unsafe.Offsetof(ioe.Addr)),
		off("kvm_ioeventfd", "len", unsafe.Offsetof(ioe.Len)),
		off("kvm_ioeventfd", "fd", unsafe.Offsetof(ioe.FD)),
		off("kvm_ioeventfd", "flags", unsafe.Offsetof(ioe.Flags)),
		off("kvm_irq_routing_irqchip", "pin", unsafe.Offsetof(rc.Pin)),
		off("kvm_irq_routing_msi", "address_hi", unsafe.Offsetof(rm.AddressHi)),
		off("kvm_irq_routing_msi", "data", unsafe.Offsetof(rm.Data)),
		off("kvm_irq_routing_msi", "devid", unsafe.Offsetof(rm.DevID)),
		off("kvm_irq_routing_entry", "type", unsafe.Offsetof(re.Type)),
		off("kvm_irq_routing_entry", "flags", unsafe.Offsetof(re.Flags)),
		off("kvm_irq_routing_entry", "u", unsafe.Offsetof(re.U)),
		off("kvm_irq_routing", "flags", unsafe.Offsetof(rh.Flags)),
		off("kvm_msi", "address_hi", unsafe.Offsetof(ms.AddressHi)),
		off("kvm_msi", "data", unsafe.Offsetof(ms.Data)),
		off("kvm_msi", "flags", unsafe.Offsetof(ms.Flags)),
		off("kvm_msi", "devid", unsafe.Offsetof(ms.DevID)),

		// struct kvm_run: the offsets decodeExit reads.
		off("kvm_run", "immediate_exit", runImmediateExit),
		off("kvm_run", "exit_reason", runExitReason),
		off("kvm_run", "hw", runUnion),
		off("kvm_run", "kvm_valid_regs", runHeaderSize),
		off("kvm_run", "hw.hardware_exit_reason", runHWExitReason),
		off("kvm_run", "fail_entry.hardware_entry_failure_reason", runFailEntryReason),
		off("kvm_run", "fail_entry.cpu", runFailEntryCPU),
		off("kvm_run", "io.direction", runIODirection),
		off("kvm_run", "io.size", runIOSize),
		off("kvm_run", "io.port", runIOPort),
		off("kvm_run", "io.count", runIOCount),
		off("kvm_run", "io.data_offset", runIODataOffset),
		off("kvm_run", "debug.arch.exception", runDebugException),
		off("kvm_run", "debug.arch.pc", runDebugPC),
		off("kvm_run", "debug.arch.dr6", runDebugDR6),
		off("kvm_run", "debug.arch.dr7", runDebugDR7),
		off("kvm_run", "mmio.phys_addr", runMMIOPhysAddr),
		off("kvm_run", "mmio.data", runMMIOData),
		off("kvm_run", "mmio.len", runMMIOLen),
		off("kvm_run", "mmio.is_write", runMMIOIsWrite),
		off("kvm_run", "internal.suberror", runInternalSuberror),
		off("kvm_run", "internal.ndata", runInternalNData),
		off("kvm_run", "internal.data", runInternalData),
		off("kvm_run", "system_event.type", runSystemEventType),
		off("kvm_run", "system_event.ndata", runSystemEventNData),
		off("kvm_run", "system_event.data", runSystemEventData),

		// ioctl request numbers.
		num("KVM_GET_API_VERSION", uint64(kvmGetAPIVersion)),
		num("KVM_CREATE_VM", uint64(kvmCreateVM)),
		num("KVM_CHECK_EXTENSION", uint64(kvmCheckExtension)),
		num("KVM_GET_VCPU_MMAP_SIZE", uint64(kvmGetVCPUMmapSize)),
		num("KVM_GET_SUPPORTED_CPUID", uint64(kvmGetSupportedCPUID)),
		num("KVM_CREATE_VCPU", uint64(kvmCreateVCPU)),
		num("KVM_GET_DIRTY_LOG", uint64(kvmGetDirtyLog)),
		num("KVM_SET_USER_MEMORY_REGION", uint64(kvmSetUserMemoryRegion)),
		num("KVM_SET_TSS_ADDR", uint64(kvmSetTSSAddr)),
		num("KVM_SET_IDENTITY_MAP_ADDR", uint64(kvmSetIdentityMapAddr)),
		num("KVM_CREATE_IRQCHIP", uint64(kvmCreateIRQChip)),
		num("KVM_IRQ_LINE", uint64(kvmIRQLine)),
		num("KVM_GET_IRQCHIP", uint64(kvmGetIRQChip)),
		num("KVM_SET_IRQCHIP", uint64(kvmSetIRQChip)),
		num("KVM_SET_GSI_ROUTING", uint64(kvmSetGSIRouting)),
		num("KVM_IRQFD", uint64(kvmIRQFD)),
		num("KVM_CREATE_PIT2", uint64(kvmCreatePIT2)),
		num("KVM_IOEVENTFD", uint64(kvmIOEventFD)),
		num("KVM_SET_CLOCK", uint64(kvmSetClock)),
		num("KVM_GET_CLOCK", uint64(kvmGetClock)),
		num("KVM_GET_PIT2", uint64(kvmGetPIT2)),
		num("KVM_SET_PIT2", uint64(kvmSetPIT2)),
		num("KVM_SIGNAL_MSI", uint64(kvmSignalMSI)),
		num("KVM_RUN", uint64(kvmRun)),
		num("KVM_GET_REGS", uint64(kvmGetRegs)),
		num("KVM_SET_REGS", uint64(kvmSetRegs)),
		num("KVM_GET_SREGS", uint64(kvmGetSregs)),
		num("KVM_SET_SREGS", uint64(kvmSetSregs)),
		num("KVM_GET_MSRS", uint64(kvmGetMSRs)),
		num("KVM_SET_MSRS", uint64(kvmSetMSRs)),
		num("KVM_GET_FPU", uint64(kvmGetFPU)),
		num("KVM_SET_FPU", uint64(kvmSetFPU)),
		num("KVM_GET_LAPIC", uint64(kvmGetLAPIC)),
		num("KVM_SET_LAPIC", uint64(kvmSetLAPIC)),
		num("KVM_SET_CPUID2", uint64(kvmSetCPUID2)),
		num("KVM_GET_CPUID2", uint64(kvmGetCPUID2)),
		num("KVM_GET_MP_STATE", uint64(kvmGetMPState)),
		num("KVM_SET_MP_STATE", uint64(kvmSetMPState)),
		num("KVM_SET_GUEST_DEBUG", uint64(kvmSetGuestDebug)),
		num("KVM_GET_VCPU_EVENTS", uint64(kvmGetVCPUEvents)),
		num("KVM_SET_VCPU_EVENTS", uint64(kvmSetVCPUEvents)),
		num("KVM_GET_XSAVE", uint64(kvmGetXSAVE)),
		num("KVM_SET_XSAVE", uint64(kvmSetXSAVE)),

		// Constants.
		num("KVM_API_VERSION", APIVersion),
		num("KVM_EXIT_UNKNOWN", uint64(ExitUnknown)),
		num("KVM_EXIT_EXCEPTION", uint64(ExitException)),
		num("KVM_EXIT_IO", uint64(ExitIO)),
		num("KVM_EXIT_HYPERCALL", uint64(ExitHypercall)),
		num("KVM_EXIT_DEBUG", uint64(ExitDebug)),
		num("KVM_EXIT_HLT", uint64(ExitHLT)),
		num("KVM_EXIT_MMIO", uint64(ExitMMIO)),
		num("KVM_EXIT_IRQ_WINDOW_OPEN", uint64(ExitIRQWindowOpen)),
		num("KVM_EXIT_SHUTDOWN", uint64(ExitShutdown)),
		num("KVM_EXIT_FAIL_ENTRY", uint64(ExitFailEntry)),
		num("KVM_EXIT_INTR", uint64(ExitIntr)),
		num("KVM_EXIT_INTERNAL_ERROR", uint64(ExitInternalError)),
		num("KVM_EXIT_SYSTEM_EVENT", uint64(ExitSystemEvent)),
		num("KVM_EXIT_X86_RDMSR", uint64(ExitX86RDMSR)),
		num("KVM_EXIT_X86_WRMSR", uint64(ExitX86WRMSR)),
		num("KVM_EXIT_DIRTY_RING_FULL", uint64(ExitDirtyRingFull)),
		num("KVM_EXIT_X86_BUS_LOCK", uint64(ExitX86BusLock)),
		num("KVM_EXIT_NOTIFY", uint64(ExitNotify)),
		num("KVM_EXIT_IO_OUT", ioDirectionOut),
		num("KVM_SYSTEM_EVENT_SHUTDOWN", uint64(SystemEventShutdown)),
		num("KVM_SYSTEM_EVENT_RESET", uint64(SystemEventReset)),
		num("KVM_SYSTEM_EVENT_CRASH", uint64(SystemEventCrash)),
		num("KVM_SYSTEM_EVENT_WAKEUP", uint64(SystemEventWakeup)),
		num("KVM_SYSTEM_EVENT_SUSPEND", uint64(SystemEventSuspend)),
		num("KVM_SYSTEM_EVENT_SEV_TERM", uint64(SystemEventSEVTerm)),
		num("KVM_INTERNAL_ERROR_EMULATION", uint64(InternalErrorEmulation)),
		num("KVM_INTERNAL_ERROR_SIMUL_EX", uint64(InternalErrorSimulEx)),
		num("KVM_INTERNAL_ERROR_DELIVERY_EV", uint64(InternalErrorDeliveryEv)),
		num("KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON", uint64(InternalErrorUnexpectedExitReason)),
		num("KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES", uint64(emulationFlagInstructionBytes)),
		num("KVM_GUESTDBG_ENABLE", uint64(GuestDebugEnable)),
		num("KVM_GUESTDBG_SINGLESTEP", uint64(GuestDebugSingleStep)),
		num("KVM_GUESTDBG_USE_SW_BP", uint64(GuestDebugUseSWBP)),
		num("KVM_GUESTDBG_USE_HW_BP", uint64(GuestDebugUseHWBP)),
		num("KVM_GUESTDBG_INJECT_DB", uint64(GuestDebugInjectDB)),
		num("KVM_GUESTDBG_INJECT_BP", uint64(GuestDebugInjectBP)),
		num("KVM_GUESTDBG_BLOCKIRQ", uint64(GuestDebugBlockIRQ)),
		num("KVM_MP_STATE_RUNNABLE", uint64(MPStateRunnable)),
		num("KVM_MP_STATE_UNINITIALIZED", uint64(MPStateUninitialized)),
		num("KVM_MP_STATE_INIT_RECEIVED", uint64(MPStateInitReceived)),
		num("KVM_MP_STATE_HALTED", uint64(MPStateHalted)),
		num("KVM_MP_STATE_SIPI_RECEIVED", uint64(MPStateSIPIReceived)),
		num("KVM_MEM_LOG_DIRTY_PAGES", MemLogDirtyPages),
		num("KVM_MEM_READONLY", MemReadonly),
		num("KVM_IOEVENTFD_FLAG_DATAMATCH", uint64(IOEventFDDatamatch)),
		num("KVM_IOEVENTFD_FLAG_PIO", uint64(IOEventFDPIO)),
		num("KVM_IOEVENTFD_FLAG_DEASSIGN", uint64(IOEventFDDeassign)),
		num("KVM_IRQFD_FLAG_DEASSIGN", irqfdFlagDeassign),
		num("KVM_CLOCK_TSC_STABLE", ClockTSCStable),
		num("KVM_CLOCK_REALTIME", ClockRealtime),
		num("KVM_CLOCK_HOST_TSC", ClockHostTSC),
		num("KVM_PIT_FLAGS_HPET_LEGACY", PITFlagsHPETLegacy),
		num("KVM_PIT_FLAGS_SPEAKER_DATA_ON", PITFlagsSpeakerDataOn),
		num("KVM_PIT_SPEAKER_DUMMY", pitSpeakerDummy),
		num("KVM_IRQCHIP_PIC_MASTER", IRQChipPICMaster),
		num("KVM_IRQCHIP_PIC_SLAVE", IRQChipPICSlave),
		num("KVM_IRQCHIP_IOAPIC", IRQChipIOAPIC),
		num("KVM_IOAPIC_NUM_PINS", IOAPICPins),
		num("KVM_IRQ_ROUTING_IRQCHIP", uint64(IRQRouteIRQChip)),
		num("KVM_IRQ_ROUTING_MSI", uint64(IRQRouteMSI)),
		num("KVM_VCPUEVENT_VALID_NMI_PENDING", uint64(VCPUEventValidNMIPending)),
		num("KVM_VCPUEVENT_VALID_SIPI_VECTOR", uint64(VCPUEventValidSIPIVector)),
		num("KVM_VCPUEVENT_VALID_SHADOW", uint64(VCPUEventValidShadow)),
		num("KVM_VCPUEVENT_VALID_SMM", uint64(VCPUEventValidSMM)),
		num("KVM_VCPUEVENT_VALID_PAYLOAD", uint64(VCPUEventValidPayload)),
		num("KVM_VCPUEVENT_VALID_TRIPLE_FAULT", uint64(VCPUEventValidTripleFault)),
		num("KVM_CPUID_FLAG_SIGNIFCANT_INDEX", uint64(CPUIDFlagSignificantIndex)),
		num("KVM_CPUID_FLAG_STATEFUL_FUNC", uint64(CPUIDFlagStatefulFunc)),
		num("KVM_CPUID_FLAG_STATE_READ_NEXT", uint64(CPUIDFlagStateReadNext)),
	}
	values = append(values, abiStats()...)
	values = append(values, abiSaveState()...)
	return append(values, abiCaps()...)
}

// abiCaps are the capability numbers of caps.go, each under its C name
// (Cap's String), so a capability added there is checked too.
func abiCaps() []ABIValue {
	var out []ABIValue
	for c := range capNames {
		out = append(out, ABIValue{c.String(), uint64(c)})
	}
	return out
}
