package kvm

import (
	"encoding/binary"
	"fmt"
)

// ExitReason is exit_reason of struct kvm_run (KVM_EXIT_*).
type ExitReason uint32

// Exit reasons, numbered as in linux/kvm.h.
const (
	ExitUnknown        ExitReason = 0  // KVM_EXIT_UNKNOWN
	ExitException      ExitReason = 1  // KVM_EXIT_EXCEPTION
	ExitIO             ExitReason = 2  // KVM_EXIT_IO
	ExitHypercall      ExitReason = 3  // KVM_EXIT_HYPERCALL
	ExitDebug          ExitReason = 4  // KVM_EXIT_DEBUG
	ExitHLT            ExitReason = 5  // KVM_EXIT_HLT
	ExitMMIO           ExitReason = 6  // KVM_EXIT_MMIO
	ExitIRQWindowOpen  ExitReason = 7  // KVM_EXIT_IRQ_WINDOW_OPEN
	ExitShutdown       ExitReason = 8  // KVM_EXIT_SHUTDOWN
	ExitFailEntry      ExitReason = 9  // KVM_EXIT_FAIL_ENTRY
	ExitIntr           ExitReason = 10 // KVM_EXIT_INTR
	ExitInternalError  ExitReason = 17 // KVM_EXIT_INTERNAL_ERROR
	ExitSystemEvent    ExitReason = 24 // KVM_EXIT_SYSTEM_EVENT
	ExitX86RDMSR       ExitReason = 29 // KVM_EXIT_X86_RDMSR
	ExitX86WRMSR       ExitReason = 30 // KVM_EXIT_X86_WRMSR
	ExitDirtyRingFull  ExitReason = 31 // KVM_EXIT_DIRTY_RING_FULL
	ExitX86BusLock     ExitReason = 33 // KVM_EXIT_X86_BUS_LOCK
	ExitNotify         ExitReason = 37 // KVM_EXIT_NOTIFY
	exitReasonsInTable            = 38
)

// exitNames holds every KVM_EXIT_* name of linux/kvm.h (6.1), for reports.
var exitNames = [exitReasonsInTable]string{
	"KVM_EXIT_UNKNOWN", "KVM_EXIT_EXCEPTION", "KVM_EXIT_IO", "KVM_EXIT_HYPERCALL",
	"KVM_EXIT_DEBUG", "KVM_EXIT_HLT", "KVM_EXIT_MMIO", "KVM_EXIT_IRQ_WINDOW_OPEN",
	"KVM_EXIT_SHUTDOWN", "KVM_EXIT_FAIL_ENTRY", "KVM_EXIT_INTR", "KVM_EXIT_SET_TPR",
	"KVM_EXIT_TPR_ACCESS", "KVM_EXIT_S390_SIEIC", "KVM_EXIT_S390_RESET", "KVM_EXIT_DCR",
	"KVM_EXIT_NMI", "KVM_EXIT_INTERNAL_ERROR", "KVM_EXIT_OSI", "KVM_EXIT_PAPR_HCALL",
	"KVM_EXIT_S390_UCONTROL", "KVM_EXIT_WATCHDOG", "KVM_EXIT_S390_TSCH", "KVM_EXIT_EPR",
	"KVM_EXIT_SYSTEM_EVENT", "KVM_EXIT_S390_STSI", "KVM_EXIT_IOAPIC_EOI", "KVM_EXIT_HYPERV",
	"KVM_EXIT_ARM_NISV", "KVM_EXIT_X86_RDMSR", "KVM_EXIT_X86_WRMSR", "KVM_EXIT_DIRTY_RING_FULL",
	"KVM_EXIT_AP_RESET_HOLD", "KVM_EXIT_X86_BUS_LOCK", "KVM_EXIT_XEN", "KVM_EXIT_RISCV_SBI",
	"KVM_EXIT_RISCV_CSR", "KVM_EXIT_NOTIFY",
}

func (r ExitReason) String() string {
	if r < exitReasonsInTable {
		return exitNames[r]
	}
	return fmt.Sprintf("KVM_EXIT_%d", uint32(r))
}

// Byte offsets into struct kvm_run (linux/kvm.h, x86, no s390 fields). The
// exit-specific members share a union that starts at runUnion; each offset
// below is checked against gcc's offsetof by TestABIMatchesHeader.
const (
	runImmediateExit = 1  // immediate_exit
	runExitReason    = 8  // exit_reason
	runUnion         = 32 // the exit union
	runHeaderSize    = runUnion + 256

	runHWExitReason = runUnion + 0 // hw.hardware_exit_reason

	runFailEntryReason = runUnion + 0 // fail_entry.hardware_entry_failure_reason
	runFailEntryCPU    = runUnion + 8 // fail_entry.cpu

	runIODirection  = runUnion + 0 // io.direction
	runIOSize       = runUnion + 1 // io.size
	runIOPort       = runUnion + 2 // io.port
	runIOCount      = runUnion + 4 // io.count
	runIODataOffset = runUnion + 8 // io.data_offset

	runDebugException = runUnion + 0  // debug.arch.exception
	runDebugPC        = runUnion + 8  // debug.arch.pc
	runDebugDR6       = runUnion + 16 // debug.arch.dr6
	runDebugDR7       = runUnion + 24 // debug.arch.dr7

	runMMIOPhysAddr = runUnion + 0  // mmio.phys_addr
	runMMIOData     = runUnion + 8  // mmio.data
	runMMIOLen      = runUnion + 16 // mmio.len
	runMMIOIsWrite  = runUnion + 20 // mmio.is_write

	runInternalSuberror = runUnion + 0 // internal.suberror
	runInternalNData    = runUnion + 4 // internal.ndata
	runInternalData     = runUnion + 8 // internal.data

	runSystemEventType  = runUnion + 0 // system_event.type
	runSystemEventNData = runUnion + 4 // system_event.ndata
	runSystemEventData  = runUnion + 8 // system_event.data

	ioDirectionOut = 1  // KVM_EXIT_IO_OUT
	maxExitData    = 16 // entries of internal.data and system_event.data
)

// exits holds one value of each Exit type; a VCPU owns one and decodeExit
// fills and returns them, so Run does not allocate.
type exits struct {
	io          IOExit
	mmio        MMIOExit
	hlt         HLTExit
	shutdown    ShutdownExit
	systemEvent SystemEventExit
	failEntry   FailEntryExit
	internal    InternalErrorExit
	debug       DebugExit
	interrupted InterruptedExit
	unknown     UnknownExit
}

var le = binary.LittleEndian

// decodeExit reads the exit from run, the vCPU's mmap'd struct kvm_run page,
// into e. Slices in the returned exit alias run. It fails only if run is
// too short or the kernel's offsets point outside it.
func decodeExit(run []byte, e *exits) (Exit, error) {
	if len(run) < runHeaderSize {
		return nil, fmt.Errorf("kvm_run page is %d bytes, want at least %d: use the size KVM_GET_VCPU_MMAP_SIZE reports", len(run), runHeaderSize)
	}
	reason := ExitReason(le.Uint32(run[runExitReason:]))
	switch reason {
	case ExitIO:
		x := &e.io
		x.Out = run[runIODirection] == ioDirectionOut
		x.Size = run[runIOSize]
		x.Port = le.Uint16(run[runIOPort:])
		x.Count = le.Uint32(run[runIOCount:])
		off := le.Uint64(run[runIODataOffset:])
		// Size is at most 255 and Count at most 2^32-1: the product fits in 64 bits.
		n := uint64(x.Size) * uint64(x.Count)
		if off > uint64(len(run)) || n > uint64(len(run))-off {
			return nil, fmt.Errorf("%v: data at offset %#x, %d bytes, lies outside the %d-byte kvm_run mapping", reason, off, n, len(run))
		}
		x.Data = run[off : off+n : off+n]
		return x, nil
	case ExitMMIO:
		x := &e.mmio
		x.Addr = le.Uint64(run[runMMIOPhysAddr:])
		x.Write = run[runMMIOIsWrite] != 0
		n := le.Uint32(run[runMMIOLen:])
		if n > 8 {
			return nil, fmt.Errorf("%v: access of %d bytes at %#x, want at most 8", reason, n, x.Addr)
		}
		x.Data = run[runMMIOData : runMMIOData+int(n) : runMMIOData+int(n)]
		return x, nil
	case ExitHLT:
		return &e.hlt, nil
	case ExitShutdown:
		return &e.shutdown, nil
	case ExitIntr:
		return &e.interrupted, nil
	case ExitSystemEvent:
		x := &e.systemEvent
		x.Type = SystemEventType(le.Uint32(run[runSystemEventType:]))
		x.Data = readData(run, runSystemEventNData, runSystemEventData, &x.data)
		return x, nil
	case ExitFailEntry:
		x := &e.failEntry
		x.Reason = le.Uint64(run[runFailEntryReason:])
		x.CPU = le.Uint32(run[runFailEntryCPU:])
		return x, nil
	case ExitInternalError:
		x := &e.internal
		x.Suberror = InternalError(le.Uint32(run[runInternalSuberror:]))
		x.Data = readData(run, runInternalNData, runInternalData, &x.data)
		return x, nil
	case ExitDebug:
		x := &e.debug
		x.Exception = le.Uint32(run[runDebugException:])
		x.PC = le.Uint64(run[runDebugPC:])
		x.DR6 = le.Uint64(run[runDebugDR6:])
		x.DR7 = le.Uint64(run[runDebugDR7:])
		return x, nil
	}
	x := &e.unknown
	x.Reason = reason
	x.HardwareReason = 0
	if reason == ExitUnknown {
		x.HardwareReason = le.Uint64(run[runHWExitReason:])
	}
	return x, nil
}

// readData copies the ndata (capped at 16) u64s at dataOff into buf and
// returns them.
func readData(run []byte, ndataOff, dataOff int, buf *[maxExitData]uint64) []uint64 {
	n := min(le.Uint32(run[ndataOff:]), maxExitData)
	for i := range n {
		buf[i] = le.Uint64(run[dataOff+8*int(i):])
	}
	return buf[:n]
}
