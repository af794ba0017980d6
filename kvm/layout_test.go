package kvm

import (
	"testing"
	"unsafe"
)

// The want values below were printed by a throwaway C program using sizeof,
// offsetof and the ioctl macros against <linux/kvm.h> from Debian's
// linux-libc-dev 6.1 (x86_64, gcc 12).

type layoutCase struct {
	name      string
	got, want uintptr
}

func checkLayout(t *testing.T, cases []layoutCase) {
	t.Helper()
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestStructSizes(t *testing.T) {
	checkLayout(t, []layoutCase{
		{"sizeof(Regs)", unsafe.Sizeof(Regs{}), 144},
		{"sizeof(Segment)", unsafe.Sizeof(Segment{}), 24},
		{"sizeof(DTable)", unsafe.Sizeof(DTable{}), 16},
		{"sizeof(Sregs)", unsafe.Sizeof(Sregs{}), 312},
		{"sizeof(FPU)", unsafe.Sizeof(FPU{}), 416},
		{"sizeof(XSAVE)", unsafe.Sizeof(XSAVE{}), 4096},
		{"sizeof(MSREntry)", unsafe.Sizeof(MSREntry{}), 16},
		{"sizeof(msrsHeader)", unsafe.Sizeof(msrsHeader{}), 8},
		{"sizeof(CPUIDEntry)", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"sizeof(cpuid2Header)", unsafe.Sizeof(cpuid2Header{}), 8},
		{"sizeof(LAPICState)", unsafe.Sizeof(LAPICState{}), 1024},
		{"sizeof(VCPUEvents)", unsafe.Sizeof(VCPUEvents{}), 64},
		{"sizeof(MPState)", unsafe.Sizeof(MPState{}), 4},
		{"sizeof(GuestDebug)", unsafe.Sizeof(GuestDebug{}), 72},
		{"sizeof(ClockData)", unsafe.Sizeof(ClockData{}), 48},
		{"sizeof(IRQChip)", unsafe.Sizeof(IRQChip{}), 520},
		{"sizeof(PITChannelState)", unsafe.Sizeof(PITChannelState{}), 24},
		{"sizeof(PITState2)", unsafe.Sizeof(PITState2{}), 112},
		{"sizeof(pitConfig)", unsafe.Sizeof(pitConfig{}), 64},
		{"sizeof(irqLevel)", unsafe.Sizeof(irqLevel{}), 8},
		{"sizeof(userMemoryRegion)", unsafe.Sizeof(userMemoryRegion{}), 32},
		{"sizeof(dirtyLog)", unsafe.Sizeof(dirtyLog{}), 16},
		{"sizeof(irqfd)", unsafe.Sizeof(irqfd{}), 32},
		{"sizeof(ioeventfd)", unsafe.Sizeof(ioeventfd{}), 64},
		{"sizeof(irqRoutingIRQChip)", unsafe.Sizeof(irqRoutingIRQChip{}), 8},
		{"sizeof(irqRoutingMSI)", unsafe.Sizeof(irqRoutingMSI{}), 16},
		{"sizeof(irqRoutingEntry)", unsafe.Sizeof(irqRoutingEntry{}), 48},
		{"alignof(irqRoutingEntry)", unsafe.Alignof(irqRoutingEntry{}), 8},
		{"sizeof(irqRoutingHeader)", unsafe.Sizeof(irqRoutingHeader{}), 8},
		{"sizeof(msi)", unsafe.Sizeof(msi{}), 32},
		{"irqRoutingHeadWords*8", irqRoutingHeadWords * 8, 8},
		{"irqRoutingEntryWords*8", irqRoutingEntryWords * 8, 48},
		// The flexible-array helpers count words, not bytes.
		{"cpuidEntryWords*4", cpuidEntryWords * 4, 40},
		{"cpuid2HeadWords*4", cpuid2HeadWords * 4, 8},
		{"msrEntryWords*8", msrEntryWords * 8, 16},
		{"msrsHeadWords*8", msrsHeadWords * 8, 8},
	})
}

func TestFieldOffsets(t *testing.T) {
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
	checkLayout(t, []layoutCase{
		{"Regs.R8", unsafe.Offsetof(r.R8), 64},
		{"Regs.R15", unsafe.Offsetof(r.R15), 120},
		{"Regs.RIP", unsafe.Offsetof(r.RIP), 128},
		{"Regs.RFLAGS", unsafe.Offsetof(r.RFLAGS), 136},
		{"Segment.Limit", unsafe.Offsetof(seg.Limit), 8},
		{"Segment.Selector", unsafe.Offsetof(seg.Selector), 12},
		{"Segment.Type", unsafe.Offsetof(seg.Type), 14},
		{"Segment.Present", unsafe.Offsetof(seg.Present), 15},
		{"Segment.DPL", unsafe.Offsetof(seg.DPL), 16},
		{"Segment.DB", unsafe.Offsetof(seg.DB), 17},
		{"Segment.S", unsafe.Offsetof(seg.S), 18},
		{"Segment.L", unsafe.Offsetof(seg.L), 19},
		{"Segment.G", unsafe.Offsetof(seg.G), 20},
		{"Segment.AVL", unsafe.Offsetof(seg.AVL), 21},
		{"Segment.Unusable", unsafe.Offsetof(seg.Unusable), 22},
		{"DTable.Limit", unsafe.Offsetof(dt.Limit), 8},
		{"Sregs.DS", unsafe.Offsetof(s.DS), 24},
		{"Sregs.SS", unsafe.Offsetof(s.SS), 120},
		{"Sregs.TR", unsafe.Offsetof(s.TR), 144},
		{"Sregs.LDT", unsafe.Offsetof(s.LDT), 168},
		{"Sregs.GDT", unsafe.Offsetof(s.GDT), 192},
		{"Sregs.IDT", unsafe.Offsetof(s.IDT), 208},
		{"Sregs.CR0", unsafe.Offsetof(s.CR0), 224},
		{"Sregs.CR2", unsafe.Offsetof(s.CR2), 232},
		{"Sregs.CR3", unsafe.Offsetof(s.CR3), 240},
		{"Sregs.CR4", unsafe.Offsetof(s.CR4), 248},
		{"Sregs.CR8", unsafe.Offsetof(s.CR8), 256},
		{"Sregs.EFER", unsafe.Offsetof(s.EFER), 264},
		{"Sregs.APICBase", unsafe.Offsetof(s.APICBase), 272},
		{"Sregs.InterruptBitmap", unsafe.Offsetof(s.InterruptBitmap), 280},
		{"FPU.FCW", unsafe.Offsetof(fpu.FCW), 128},
		{"FPU.FSW", unsafe.Offsetof(fpu.FSW), 130},
		{"FPU.FTWX", unsafe.Offsetof(fpu.FTWX), 132},
		{"FPU.LastOpcode", unsafe.Offsetof(fpu.LastOpcode), 134},
		{"FPU.LastIP", unsafe.Offsetof(fpu.LastIP), 136},
		{"FPU.LastDP", unsafe.Offsetof(fpu.LastDP), 144},
		{"FPU.XMM", unsafe.Offsetof(fpu.XMM), 152},
		{"FPU.MXCSR", unsafe.Offsetof(fpu.MXCSR), 408},
		{"MSREntry.Data", unsafe.Offsetof(msr.Data), 8},
		{"CPUIDEntry.Index", unsafe.Offsetof(c.Index), 4},
		{"CPUIDEntry.Flags", unsafe.Offsetof(c.Flags), 8},
		{"CPUIDEntry.EAX", unsafe.Offsetof(c.EAX), 12},
		{"CPUIDEntry.EBX", unsafe.Offsetof(c.EBX), 16},
		{"CPUIDEntry.ECX", unsafe.Offsetof(c.ECX), 20},
		{"CPUIDEntry.EDX", unsafe.Offsetof(c.EDX), 24},
		{"VCPUEvents.Exception.ErrorCode", unsafe.Offsetof(ev.Exception) + unsafe.Offsetof(ev.Exception.ErrorCode), 4},
		{"VCPUEvents.Interrupt", unsafe.Offsetof(ev.Interrupt), 8},
		{"VCPUEvents.NMI", unsafe.Offsetof(ev.NMI), 12},
		{"VCPUEvents.SIPIVector", unsafe.Offsetof(ev.SIPIVector), 16},
		{"VCPUEvents.Flags", unsafe.Offsetof(ev.Flags), 20},
		{"VCPUEvents.SMI", unsafe.Offsetof(ev.SMI), 24},
		{"VCPUEvents.TripleFault", unsafe.Offsetof(ev.TripleFault), 28},
		{"VCPUEvents.ExceptionHasPayload", unsafe.Offsetof(ev.ExceptionHasPayload), 55},
		{"VCPUEvents.ExceptionPayload", unsafe.Offsetof(ev.ExceptionPayload), 56},
		{"GuestDebug.DebugReg", unsafe.Offsetof(gd.DebugReg), 8},
		{"ClockData.Flags", unsafe.Offsetof(cd.Flags), 8},
		{"ClockData.Realtime", unsafe.Offsetof(cd.Realtime), 16},
		{"ClockData.HostTSC", unsafe.Offsetof(cd.HostTSC), 24},
		{"IRQChip.Chip", unsafe.Offsetof(ic.Chip), 8},
		{"PITChannelState.LatchedCount", unsafe.Offsetof(pc.LatchedCount), 4},
		{"PITChannelState.CountLatched", unsafe.Offsetof(pc.CountLatched), 6},
		{"PITChannelState.StatusLatched", unsafe.Offsetof(pc.StatusLatched), 7},
		{"PITChannelState.Status", unsafe.Offsetof(pc.Status), 8},
		{"PITChannelState.ReadState", unsafe.Offsetof(pc.ReadState), 9},
		{"PITChannelState.WriteState", unsafe.Offsetof(pc.WriteState), 10},
		{"PITChannelState.WriteLatch", unsafe.Offsetof(pc.WriteLatch), 11},
		{"PITChannelState.RWMode", unsafe.Offsetof(pc.RWMode), 12},
		{"PITChannelState.Mode", unsafe.Offsetof(pc.Mode), 13},
		{"PITChannelState.BCD", unsafe.Offsetof(pc.BCD), 14},
		{"PITChannelState.Gate", unsafe.Offsetof(pc.Gate), 15},
		{"PITChannelState.CountLoadTime", unsafe.Offsetof(pc.CountLoadTime), 16},
		{"PITState2.Flags", unsafe.Offsetof(ps.Flags), 72},
		{"irqLevel.Level", unsafe.Offsetof(lv.Level), 4},
		{"userMemoryRegion.Flags", unsafe.Offsetof(umr.Flags), 4},
		{"userMemoryRegion.GuestPhysAddr", unsafe.Offsetof(umr.GuestPhysAddr), 8},
		{"userMemoryRegion.MemorySize", unsafe.Offsetof(umr.MemorySize), 16},
		{"userMemoryRegion.UserspaceAddr", unsafe.Offsetof(umr.UserspaceAddr), 24},
		{"dirtyLog.Bitmap", unsafe.Offsetof(dl.Bitmap), 8},
		{"irqfd.GSI", unsafe.Offsetof(fd.GSI), 4},
		{"irqfd.Flags", unsafe.Offsetof(fd.Flags), 8},
		{"irqfd.ResampleFD", unsafe.Offsetof(fd.ResampleFD), 12},
		{"ioeventfd.Addr", unsafe.Offsetof(ioe.Addr), 8},
		{"ioeventfd.Len", unsafe.Offsetof(ioe.Len), 16},
		{"ioeventfd.FD", unsafe.Offsetof(ioe.FD), 20},
		{"ioeventfd.Flags", unsafe.Offsetof(ioe.Flags), 24},
		{"irqRoutingIRQChip.Pin", unsafe.Offsetof(rc.Pin), 4},
		{"irqRoutingMSI.AddressHi", unsafe.Offsetof(rm.AddressHi), 4},
		{"irqRoutingMSI.Data", unsafe.Offsetof(rm.Data), 8},
		{"irqRoutingMSI.DevID", unsafe.Offsetof(rm.DevID), 12},
		{"irqRoutingEntry.Type", unsafe.Offsetof(re.Type), 4},
		{"irqRoutingEntry.Flags", unsafe.Offsetof(re.Flags), 8},
		{"irqRoutingEntry.U", unsafe.Offsetof(re.U), 16},
		{"irqRoutingHeader.Flags", unsafe.Offsetof(rh.Flags), 4},
		{"msi.AddressHi", unsafe.Offsetof(ms.AddressHi), 4},
		{"msi.Data", unsafe.Offsetof(ms.Data), 8},
		{"msi.Flags", unsafe.Offsetof(ms.Flags), 12},
		{"msi.DevID", unsafe.Offsetof(ms.DevID), 16},
	})
}

// TestRunOffsets checks the byte offsets decodeExit reads in struct kvm_run.
func TestRunOffsets(t *testing.T) {
	checkLayout(t, []layoutCase{
		{"kvm_run.immediate_exit", runImmediateExit, 1},
		{"kvm_run.exit_reason", runExitReason, 8},
		{"kvm_run.kvm_valid_regs (end of the exit union)", runHeaderSize, 288},
		{"kvm_run.hw.hardware_exit_reason", runHWExitReason, 32},
		{"kvm_run.fail_entry.hardware_entry_failure_reason", runFailEntryReason, 32},
		{"kvm_run.fail_entry.cpu", runFailEntryCPU, 40},
		{"kvm_run.io.direction", runIODirection, 32},
		{"kvm_run.io.size", runIOSize, 33},
		{"kvm_run.io.port", runIOPort, 34},
		{"kvm_run.io.count", runIOCount, 36},
		{"kvm_run.io.data_offset", runIODataOffset, 40},
		{"kvm_run.debug.arch.exception", runDebugException, 32},
		{"kvm_run.debug.arch.pc", runDebugPC, 40},
		{"kvm_run.debug.arch.dr6", runDebugDR6, 48},
		{"kvm_run.debug.arch.dr7", runDebugDR7, 56},
		{"kvm_run.mmio.phys_addr", runMMIOPhysAddr, 32},
		{"kvm_run.mmio.data", runMMIOData, 40},
		{"kvm_run.mmio.len", runMMIOLen, 48},
		{"kvm_run.mmio.is_write", runMMIOIsWrite, 52},
		{"kvm_run.internal.suberror", runInternalSuberror, 32},
		{"kvm_run.internal.ndata", runInternalNData, 36},
		{"kvm_run.internal.data", runInternalData, 40},
		{"kvm_run.system_event.type", runSystemEventType, 32},
		{"kvm_run.system_event.ndata", runSystemEventNData, 36},
		{"kvm_run.system_event.data", runSystemEventData, 40},
	})
}

func TestIoctlNumbers(t *testing.T) {
	checkLayout(t, []layoutCase{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, 0xae00},
		{"KVM_CREATE_VM", kvmCreateVM, 0xae01},
		{"KVM_CHECK_EXTENSION", kvmCheckExtension, 0xae03},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMmapSize, 0xae04},
		{"KVM_GET_SUPPORTED_CPUID", kvmGetSupportedCPUID, 0xc008ae05},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, 0xae41},
		{"KVM_GET_DIRTY_LOG", kvmGetDirtyLog, 0x4010ae42},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemoryRegion, 0x4020ae46},
		{"KVM_SET_TSS_ADDR", kvmSetTSSAddr, 0xae47},
		{"KVM_SET_IDENTITY_MAP_ADDR", kvmSetIdentityMapAddr, 0x4008ae48},
		{"KVM_CREATE_IRQCHIP", kvmCreateIRQChip, 0xae60},
		{"KVM_IRQ_LINE", kvmIRQLine, 0x4008ae61},
		{"KVM_GET_IRQCHIP", kvmGetIRQChip, 0xc208ae62},
		{"KVM_SET_IRQCHIP", kvmSetIRQChip, 0x8208ae63},
		{"KVM_SET_GSI_ROUTING", kvmSetGSIRouting, 0x4008ae6a},
		{"KVM_IRQFD", kvmIRQFD, 0x4020ae76},
		{"KVM_CREATE_PIT2", kvmCreatePIT2, 0x4040ae77},
		{"KVM_IOEVENTFD", kvmIOEventFD, 0x4040ae79},
		{"KVM_SET_CLOCK", kvmSetClock, 0x4030ae7b},
		{"KVM_GET_CLOCK", kvmGetClock, 0x8030ae7c},
		{"KVM_GET_PIT2", kvmGetPIT2, 0x8070ae9f},
		{"KVM_SET_PIT2", kvmSetPIT2, 0x4070aea0},
		{"KVM_SIGNAL_MSI", kvmSignalMSI, 0x4020aea5},
		{"KVM_RUN", kvmRun, 0xae80},
		{"KVM_GET_REGS", kvmGetRegs, 0x8090ae81},
		{"KVM_SET_REGS", kvmSetRegs, 0x4090ae82},
		{"KVM_GET_SREGS", kvmGetSregs, 0x8138ae83},
		{"KVM_SET_SREGS", kvmSetSregs, 0x4138ae84},
		{"KVM_GET_MSRS", kvmGetMSRs, 0xc008ae88},
		{"KVM_SET_MSRS", kvmSetMSRs, 0x4008ae89},
		{"KVM_GET_FPU", kvmGetFPU, 0x81a0ae8c},
		{"KVM_SET_FPU", kvmSetFPU, 0x41a0ae8d},
		{"KVM_GET_LAPIC", kvmGetLAPIC, 0x8400ae8e},
		{"KVM_SET_LAPIC", kvmSetLAPIC, 0x4400ae8f},
		{"KVM_SET_CPUID2", kvmSetCPUID2, 0x4008ae90},
		{"KVM_GET_CPUID2", kvmGetCPUID2, 0xc008ae91},
		{"KVM_GET_MP_STATE", kvmGetMPState, 0x8004ae98},
		{"KVM_SET_MP_STATE", kvmSetMPState, 0x4004ae99},
		{"KVM_SET_GUEST_DEBUG", kvmSetGuestDebug, 0x4048ae9b},
		{"KVM_GET_VCPU_EVENTS", kvmGetVCPUEvents, 0x8040ae9f},
		{"KVM_SET_VCPU_EVENTS", kvmSetVCPUEvents, 0x4040aea0},
		{"KVM_GET_XSAVE", kvmGetXSAVE, 0x9000aea4},
		{"KVM_SET_XSAVE", kvmSetXSAVE, 0x5000aea5},
	})
}

// TestFlexArrayMatchesStructs checks that the word-by-word encoders put each
// field where the mirrored struct (and so the C struct) has it.
func TestFlexArrayMatchesStructs(t *testing.T) {
	c := CPUIDEntry{Function: 1, Index: 2, Flags: 3, EAX: 4, EBX: 5, ECX: 6, EDX: 7}
	cbuf := newCPUID2([]CPUIDEntry{c}, 1)
	// Safe: CPUIDEntry is 40 bytes of u32s (TestStructSizes), read as 10 words.
	cwords := unsafe.Slice((*uint32)(unsafe.Pointer(&c)), cpuidEntryWords)
	for i, w := range cwords {
		if got := cbuf[cpuid2HeadWords+i]; got != w {
			t.Errorf("newCPUID2 word %d = %#x, want %#x as in CPUIDEntry", cpuid2HeadWords+i, got, w)
		}
	}
	m := MSREntry{Index: 0xc0000080, Data: 0xd01}
	mbuf := newMSRs([]MSREntry{m})
	// Safe: MSREntry is 16 bytes, 8-aligned (TestStructSizes), read as 2 words.
	mwords := unsafe.Slice((*uint64)(unsafe.Pointer(&m)), msrEntryWords)
	for i, w := range mwords {
		if got := mbuf[msrsHeadWords+i]; got != w {
			t.Errorf("newMSRs word %d = %#x, want %#x as in MSREntry", msrsHeadWords+i, got, w)
		}
	}
}
