package kvm

import (
	"fmt"
	"strings"
)

// Cap names a KVM capability, the argument of KVM_CHECK_EXTENSION. The
// answer is 0 when the capability is absent and a positive number (often 1,
// sometimes a count or limit) when present.
type Cap int

// Capabilities govmm asks about (KVM_CAP_*, numbers from linux/kvm.h).
const (
	CapIRQChip             Cap = 0   // KVM_CAP_IRQCHIP: in-kernel PIC and IOAPIC
	CapHLT                 Cap = 1   // KVM_CAP_HLT
	CapUserMemory          Cap = 3   // KVM_CAP_USER_MEMORY
	CapSetTSSAddr          Cap = 4   // KVM_CAP_SET_TSS_ADDR
	CapExtCPUID            Cap = 7   // KVM_CAP_EXT_CPUID: KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2
	CapNrVCPUs             Cap = 9   // KVM_CAP_NR_VCPUS: recommended vCPUs per VM
	CapMPState             Cap = 14  // KVM_CAP_MP_STATE
	CapSyncMMU             Cap = 16  // KVM_CAP_SYNC_MMU: host mapping changes reach the guest
	CapSetGuestDebug       Cap = 23  // KVM_CAP_SET_GUEST_DEBUG
	CapIRQRouting          Cap = 25  // KVM_CAP_IRQ_ROUTING
	CapIRQFD               Cap = 32  // KVM_CAP_IRQFD
	CapPIT2                Cap = 33  // KVM_CAP_PIT2
	CapPITState2           Cap = 35  // KVM_CAP_PIT_STATE2
	CapIOEventFD           Cap = 36  // KVM_CAP_IOEVENTFD
	CapSetIdentityMapAddr  Cap = 37  // KVM_CAP_SET_IDENTITY_MAP_ADDR
	CapAdjustClock         Cap = 39  // KVM_CAP_ADJUST_CLOCK: KVM_GET_CLOCK and KVM_SET_CLOCK
	CapInternalErrorData   Cap = 40  // KVM_CAP_INTERNAL_ERROR_DATA
	CapVCPUEvents          Cap = 41  // KVM_CAP_VCPU_EVENTS
	CapDebugRegs           Cap = 50  // KVM_CAP_DEBUGREGS
	CapX86RobustSingleStep Cap = 51  // KVM_CAP_X86_ROBUST_SINGLESTEP
	CapXSave               Cap = 55  // KVM_CAP_XSAVE
	CapXCRs                Cap = 56  // KVM_CAP_XCRS
	CapTSCControl          Cap = 60  // KVM_CAP_TSC_CONTROL
	CapGetTSCKHz           Cap = 61  // KVM_CAP_GET_TSC_KHZ
	CapMaxVCPUs            Cap = 66  // KVM_CAP_MAX_VCPUS: the most vCPUs per VM
	CapTSCDeadlineTimer    Cap = 72  // KVM_CAP_TSC_DEADLINE_TIMER: the LAPIC's TSC-deadline mode (MSR 0x6e0)
	CapKVMClockCtrl        Cap = 76  // KVM_CAP_KVMCLOCK_CTRL: KVM_KVMCLOCK_CTRL tells a paused guest it was paused
	CapSignalMSI           Cap = 77  // KVM_CAP_SIGNAL_MSI: KVM_SIGNAL_MSI
	CapReadonlyMem         Cap = 81  // KVM_CAP_READONLY_MEM
	CapCheckExtensionVM    Cap = 105 // KVM_CAP_CHECK_EXTENSION_VM: KVM_CHECK_EXTENSION on a VM fd
	CapSplitIRQChip        Cap = 121 // KVM_CAP_SPLIT_IRQCHIP
	CapIOEventFDAnyLength  Cap = 122 // KVM_CAP_IOEVENTFD_ANY_LENGTH
	CapMaxVCPUID           Cap = 128 // KVM_CAP_MAX_VCPU_ID
	CapImmediateExit       Cap = 136 // KVM_CAP_IMMEDIATE_EXIT
	CapX86DisableExits     Cap = 143 // KVM_CAP_X86_DISABLE_EXITS
	CapDirtyLogRing        Cap = 192 // KVM_CAP_DIRTY_LOG_RING: per-vCPU rings of dirtied pages (govmm uses KVM_GET_DIRTY_LOG's bitmaps)
	CapBinaryStatsFD       Cap = 203 // KVM_CAP_BINARY_STATS_FD
	CapXSave2              Cap = 208 // KVM_CAP_XSAVE2
	CapSystemEventData     Cap = 215 // KVM_CAP_SYSTEM_EVENT_DATA: SystemEventExit.Data is valid
)

var capNames = map[Cap]string{
	CapIRQChip:             "KVM_CAP_IRQCHIP",
	CapHLT:                 "KVM_CAP_HLT",
	CapUserMemory:          "KVM_CAP_USER_MEMORY",
	CapSetTSSAddr:          "KVM_CAP_SET_TSS_ADDR",
	CapExtCPUID:            "KVM_CAP_EXT_CPUID",
	CapNrVCPUs:             "KVM_CAP_NR_VCPUS",
	CapMPState:             "KVM_CAP_MP_STATE",
	CapSyncMMU:             "KVM_CAP_SYNC_MMU",
	CapSetGuestDebug:       "KVM_CAP_SET_GUEST_DEBUG",
	CapIRQRouting:          "KVM_CAP_IRQ_ROUTING",
	CapIRQFD:               "KVM_CAP_IRQFD",
	CapPIT2:                "KVM_CAP_PIT2",
	CapPITState2:           "KVM_CAP_PIT_STATE2",
	CapIOEventFD:           "KVM_CAP_IOEVENTFD",
	CapSetIdentityMapAddr:  "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	CapAdjustClock:         "KVM_CAP_ADJUST_CLOCK",
	CapInternalErrorData:   "KVM_CAP_INTERNAL_ERROR_DATA",
	CapVCPUEvents:          "KVM_CAP_VCPU_EVENTS",
	CapDebugRegs:           "KVM_CAP_DEBUGREGS",
	CapX86RobustSingleStep: "KVM_CAP_X86_ROBUST_SINGLESTEP",
	CapXSave:               "KVM_CAP_XSAVE",
	CapXCRs:                "KVM_CAP_XCRS",
	CapTSCControl:          "KVM_CAP_TSC_CONTROL",
	CapGetTSCKHz:           "KVM_CAP_GET_TSC_KHZ",
	CapMaxVCPUs:            "KVM_CAP_MAX_VCPUS",
	CapTSCDeadlineTimer:    "KVM_CAP_TSC_DEADLINE_TIMER",
	CapKVMClockCtrl:        "KVM_CAP_KVMCLOCK_CTRL",
	CapSignalMSI:           "KVM_CAP_SIGNAL_MSI",
	CapReadonlyMem:         "KVM_CAP_READONLY_MEM",
	CapCheckExtensionVM:    "KVM_CAP_CHECK_EXTENSION_VM",
	CapSplitIRQChip:        "KVM_CAP_SPLIT_IRQCHIP",
	CapIOEventFDAnyLength:  "KVM_CAP_IOEVENTFD_ANY_LENGTH",
	CapMaxVCPUID:           "KVM_CAP_MAX_VCPU_ID",
	CapImmediateExit:       "KVM_CAP_IMMEDIATE_EXIT",
	CapX86DisableExits:     "KVM_CAP_X86_DISABLE_EXITS",
	CapDirtyLogRing:        "KVM_CAP_DIRTY_LOG_RING",
	CapBinaryStatsFD:       "KVM_CAP_BINARY_STATS_FD",
	CapXSave2:              "KVM_CAP_XSAVE2",
	CapSystemEventData:     "KVM_CAP_SYSTEM_EVENT_DATA",
}

func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("KVM_CAP_%d", int(c))
}

// Extensions answers KVM_CHECK_EXTENSION. *System implements it; tests use
// a table.
type Extensions interface {
	CheckExtension(Cap) (int, error)
}

// requiredCaps are the capabilities govmm cannot run without, each with
// what depends on it, and whether Needs asks for it. Every x86 KVM since
// Linux 4.11 has them all.
var requiredCaps = []struct {
	cap    Cap
	need   string
	wanted func(Needs) bool
}{
	{CapImmediateExit, "kicking a vCPU out of KVM_RUN (Stop, Pause, Ctrl-C) depends on kvm_run.immediate_exit; without it a kick that lands just before KVM_RUN is lost", func(Needs) bool { return true }},
	{CapIRQChip, "the in-kernel PIC, IOAPIC and local APICs deliver every interrupt", func(Needs) bool { return true }},
	{CapPIT2, "the in-kernel PIT is the guest's timer (KVM_CREATE_PIT2)", func(n Needs) bool { return n.PIT }},
}

// Needs is what a VM will ask of KVM, for CheckCaps.
type Needs struct {
	VCPUs int
	PIT   bool // KVM's in-kernel PIT (KVM_CREATE_PIT2), rather than the VMM's own
}

// defaultVCPUs is what KVM's API documentation says to assume when
// KVM_CAP_NR_VCPUS is absent.
const defaultVCPUs = 4

// MissingCapError says the host's KVM lacks a capability govmm needs.
type MissingCapError struct {
	Cap  Cap
	Need string // what depends on it
}

func (e *MissingCapError) Error() string {
	return fmt.Sprintf("this host's KVM lacks %v: %s; run on a host kernel with KVM from Linux 4.11 or newer (for a nested guest, one whose hypervisor offers it)", e.Cap, e.Need)
}

// VCPULimits is what KVM says about vCPUs per VM.
type VCPULimits struct {
	// Max is the most vCPUs a VM may have: KVM_CAP_MAX_VCPUS, else
	// KVM_CAP_NR_VCPUS, else 4, as KVM's API documentation says.
	Max int
	// Recommended is KVM_CAP_NR_VCPUS (on current kernels the host's
	// online CPUs), else 4: more vCPUs than that share CPUs.
	Recommended int
}

// CheckCaps checks that the host's KVM has what govmm needs to run the VM
// n describes. Its error, one line, names each missing capability (each a
// *MissingCapError for errors.As) and a vCPU count above the host's
// limit, with what to do.
func CheckCaps(s Extensions, n Needs) (VCPULimits, error) {
	var errs []error
	for _, r := range requiredCaps {
		if !r.wanted(n) {
			continue
		}
		have, err := s.CheckExtension(r.cap)
		if err != nil {
			return VCPULimits{}, err
		}
		if have <= 0 {
			errs = append(errs, &MissingCapError{Cap: r.cap, Need: r.need})
		}
	}
	lim, err := vcpuLimits(s)
	if err != nil {
		return VCPULimits{}, err
	}
	if n.VCPUs > lim.Max {
		errs = append(errs, fmt.Errorf("%d vCPUs requested, but this host's KVM allows at most %d per VM (%v): ask for %d or fewer", n.VCPUs, lim.Max, CapMaxVCPUs, lim.Max))
	}
	if len(errs) == 0 {
		return lim, nil
	}
	return lim, capErrors(errs)
}

// capErrors is every reason CheckCaps refuses a host, on one line (a
// command-line tool's error is one line), each reachable with errors.As.
type capErrors []error

func (e capErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; and ")
}

func (e capErrors) Unwrap() []error { return e }

// vcpuLimits reads KVM_CAP_NR_VCPUS and KVM_CAP_MAX_VCPUS with the
// fallbacks of KVM's API documentation (4.1 KVM_CREATE_VCPU).
func vcpuLimits(s Extensions) (VCPULimits, error) {
	nr, err := s.CheckExtension(CapNrVCPUs)
	if err != nil {
		return VCPULimits{}, err
	}
	if nr <= 0 {
		nr = defaultVCPUs
	}
	most, err := s.CheckExtension(CapMaxVCPUs)
	if err != nil {
		return VCPULimits{}, err
	}
	if most <= 0 {
		most = nr
	}
	return VCPULimits{Max: most, Recommended: nr}, nil
}
