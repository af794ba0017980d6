package kvm

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ioctl request encoding of <asm-generic/ioctl.h>, which x86 uses:
// bits 0-7 the command number, 8-15 the type (KVMIO), 16-29 the size of the
// argument struct, 30-31 the direction as seen from user space.
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30

	// kvmio is the ioctl type byte of every KVM request (KVMIO).
	kvmio = 0xAE
)

// ioc encodes a KVM request like the C _IOC macro; ioNoArg, ior, iow and
// iowr are _IO, _IOR, _IOW and _IOWR.
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<iocDirShift | kvmio<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

func ioNoArg(nr uintptr) uintptr    { return ioc(iocNone, nr, 0) }
func ior(nr, size uintptr) uintptr  { return ioc(iocRead, nr, size) }
func iow(nr, size uintptr) uintptr  { return ioc(iocWrite, nr, size) }
func iowr(nr, size uintptr) uintptr { return ioc(iocRead|iocWrite, nr, size) }

// Request numbers, each computed from the struct it carries (unsafe.Sizeof
// is evaluated at compile time and reads no memory). The C macro is named
// beside each; TestABIMatchesHeader checks every value against gcc's.
var (
	// On /dev/kvm.
	kvmGetAPIVersion     = ioNoArg(0x00)                              // KVM_GET_API_VERSION
	kvmCreateVM          = ioNoArg(0x01)                              // KVM_CREATE_VM
	kvmCheckExtension    = ioNoArg(0x03)                              // KVM_CHECK_EXTENSION
	kvmGetVCPUMmapSize   = ioNoArg(0x04)                              // KVM_GET_VCPU_MMAP_SIZE
	kvmGetSupportedCPUID = iowr(0x05, unsafe.Sizeof(cpuid2Header{}))  // KVM_GET_SUPPORTED_CPUID
	kvmGetMSRIndexList   = iowr(0x02, unsafe.Sizeof(msrListHeader{})) // KVM_GET_MSR_INDEX_LIST

	// On a VM fd.
	kvmCreateVCPU          = ioNoArg(0x41)                                // KVM_CREATE_VCPU
	kvmGetDirtyLog         = iow(0x42, unsafe.Sizeof(dirtyLog{}))         // KVM_GET_DIRTY_LOG
	kvmSetUserMemoryRegion = iow(0x46, unsafe.Sizeof(userMemoryRegion{})) // KVM_SET_USER_MEMORY_REGION
	kvmSetTSSAddr          = ioNoArg(0x47)                                // KVM_SET_TSS_ADDR
	kvmSetIdentityMapAddr  = iow(0x48, unsafe.Sizeof(uint64(0)))          // KVM_SET_IDENTITY_MAP_ADDR
	kvmCreateIRQChip       = ioNoArg(0x60)                                // KVM_CREATE_IRQCHIP
	kvmIRQLine             = iow(0x61, unsafe.Sizeof(irqLevel{}))         // KVM_IRQ_LINE
	kvmGetIRQChip          = iowr(0x62, unsafe.Sizeof(IRQChip{}))         // KVM_GET_IRQCHIP
	kvmSetIRQChip          = ior(0x63, unsafe.Sizeof(IRQChip{}))          // KVM_SET_IRQCHIP (_IOR in the header, sic)
	kvmSetGSIRouting       = iow(0x6a, unsafe.Sizeof(irqRoutingHeader{})) // KVM_SET_GSI_ROUTING
	kvmIRQFD               = iow(0x76, unsafe.Sizeof(irqfd{}))            // KVM_IRQFD
	kvmCreatePIT2          = iow(0x77, unsafe.Sizeof(pitConfig{}))        // KVM_CREATE_PIT2
	kvmIOEventFD           = iow(0x79, unsafe.Sizeof(ioeventfd{}))        // KVM_IOEVENTFD
	kvmSetClock            = iow(0x7b, unsafe.Sizeof(ClockData{}))        // KVM_SET_CLOCK
	kvmGetClock            = ior(0x7c, unsafe.Sizeof(ClockData{}))        // KVM_GET_CLOCK
	kvmGetPIT2             = ior(0x9f, unsafe.Sizeof(PITState2{}))        // KVM_GET_PIT2
	kvmSetPIT2             = iow(0xa0, unsafe.Sizeof(PITState2{}))        // KVM_SET_PIT2
	kvmSignalMSI           = iow(0xa5, unsafe.Sizeof(msi{}))              // KVM_SIGNAL_MSI

	// On a VM or a vCPU fd.
	kvmGetStatsFD = ioNoArg(0xce) // KVM_GET_STATS_FD: the binary statistics (stats.go)

	// On a vCPU fd.
	kvmRun           = ioNoArg(0x80)                             // KVM_RUN
	kvmGetRegs       = ior(0x81, unsafe.Sizeof(Regs{}))          // KVM_GET_REGS
	kvmSetRegs       = iow(0x82, unsafe.Sizeof(Regs{}))          // KVM_SET_REGS
	kvmGetSregs      = ior(0x83, unsafe.Sizeof(Sregs{}))         // KVM_GET_SREGS
	kvmSetSregs      = iow(0x84, unsafe.Sizeof(Sregs{}))         // KVM_SET_SREGS
	kvmGetMSRs       = iowr(0x88, unsafe.Sizeof(msrsHeader{}))   // KVM_GET_MSRS
	kvmSetMSRs       = iow(0x89, unsafe.Sizeof(msrsHeader{}))    // KVM_SET_MSRS
	kvmGetFPU        = ior(0x8c, unsafe.Sizeof(FPU{}))           // KVM_GET_FPU
	kvmSetFPU        = iow(0x8d, unsafe.Sizeof(FPU{}))           // KVM_SET_FPU
	kvmGetLAPIC      = ior(0x8e, unsafe.Sizeof(LAPICState{}))    // KVM_GET_LAPIC
	kvmSetLAPIC      = iow(0x8f, unsafe.Sizeof(LAPICState{}))    // KVM_SET_LAPIC
	kvmSetCPUID2     = iow(0x90, unsafe.Sizeof(cpuid2Header{}))  // KVM_SET_CPUID2
	kvmGetCPUID2     = iowr(0x91, unsafe.Sizeof(cpuid2Header{})) // KVM_GET_CPUID2
	kvmGetMPState    = ior(0x98, unsafe.Sizeof(MPState{}))       // KVM_GET_MP_STATE
	kvmSetMPState    = iow(0x99, unsafe.Sizeof(MPState{}))       // KVM_SET_MP_STATE
	kvmSetGuestDebug = iow(0x9b, unsafe.Sizeof(GuestDebug{}))    // KVM_SET_GUEST_DEBUG
	kvmGetVCPUEvents = ior(0x9f, unsafe.Sizeof(VCPUEvents{}))    // KVM_GET_VCPU_EVENTS
	kvmSetVCPUEvents = iow(0xa0, unsafe.Sizeof(VCPUEvents{}))    // KVM_SET_VCPU_EVENTS
	kvmGetXSAVE      = ior(0xa4, unsafe.Sizeof(XSAVE{}))         // KVM_GET_XSAVE
	kvmSetXSAVE      = iow(0xa5, unsafe.Sizeof(XSAVE{}))         // KVM_SET_XSAVE
	kvmGetDebugRegs  = ior(0xa1, unsafe.Sizeof(DebugRegs{}))     // KVM_GET_DEBUGREGS
	kvmSetDebugRegs  = iow(0xa2, unsafe.Sizeof(DebugRegs{}))     // KVM_SET_DEBUGREGS
	kvmSetTSCKHz     = ioNoArg(0xa2)                             // KVM_SET_TSC_KHZ
	kvmGetTSCKHz     = ioNoArg(0xa3)                             // KVM_GET_TSC_KHZ
	kvmGetXCRs       = ior(0xa6, unsafe.Sizeof(XCRs{}))          // KVM_GET_XCRS
	kvmSetXCRs       = iow(0xa7, unsafe.Sizeof(XCRs{}))          // KVM_SET_XCRS
	kvmKVMClockCtrl  = ioNoArg(0xad)                             // KVM_KVMCLOCK_CTRL
	kvmSetDeviceAttr = iow(0xe1, unsafe.Sizeof(deviceAttr{}))    // KVM_SET_DEVICE_ATTR (vCPU attributes: the TSC offset)
	kvmGetDeviceAttr = iow(0xe2, unsafe.Sizeof(deviceAttr{}))    // KVM_GET_DEVICE_ATTR
	kvmHasDeviceAttr = iow(0xe3, unsafe.Sizeof(deviceAttr{}))    // KVM_HAS_DEVICE_ATTR
)

// ioctl issues a request whose argument is a plain integer (or none).
// It returns the ioctl's non-negative result, or the errno.
// A closed f gives EBADF.
func ioctl(f *os.File, req, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, arg)
	// The file's finalizer must not close the fd while the call runs.
	runtime.KeepAlive(f)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// ioctlPtr issues a request whose argument points at a struct the kernel
// reads or fills.
func ioctlPtr(f *os.File, req uintptr, arg unsafe.Pointer) (uintptr, error) {
	// Safe: the pointer is converted inside the Syscall call expression,
	// which keeps the pointed-to value alive and in place until it returns.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), req, uintptr(arg))
	runtime.KeepAlive(f)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}
