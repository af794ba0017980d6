// Package machine wires one virtual machine together from a Config: KVM,
// guest RAM, the legacy devices, the kernel and its boot structures, and
// the vCPUs; and runs it until the guest stops.
package machine

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/govmm/govmm/vcpu"
)

// BootPath says how a bzImage is started.
type BootPath int

const (
	// BootAuto tries BootFast and falls back to BootBzImage when the
	// payload is anything the VMM does not expect.
	BootAuto BootPath = iota
	// BootFast decompresses the bzImage's payload in the VMM (cached by
	// the image's hash) and boots the ELF kernel inside directly. On PVM
	// hosts this saves the minutes the in-guest decompressor takes there.
	BootFast
	// BootBzImage loads the bzImage as a boot loader would and lets the
	// kernel decompress itself.
	BootBzImage
	// BootReal loads an ELF image below 1 MiB and starts the boot vCPU
	// in real mode at its entry point, as a PC's firmware starts a boot
	// sector: no zero page, no page tables (realmode.go). The teaching
	// guests boot so.
	BootReal
)

// ParseBootPath reads the -boot flag's words.
func ParseBootPath(s string) (BootPath, error) {
	switch s {
	case "auto":
		return BootAuto, nil
	case "fast":
		return BootFast, nil
	case "bzimage":
		return BootBzImage, nil
	case "real":
		return BootReal, nil
	}
	return 0, fmt.Errorf("boot path %q: give auto, fast, bzimage or real", s)
}

func (b BootPath) String() string {
	switch b {
	case BootFast:
		return "fast"
	case BootBzImage:
		return "bzimage"
	case BootReal:
		return "real"
	}
	return "auto"
}

// HideMode says whether to hide the CPU features PVM's emulator fails on.
type HideMode int

const (
	HideAuto HideMode = iota // on PVM hosts only
	HideOn
	HideOff
)

// ParseHideMode reads the -hide-cpuid flag's words.
func ParseHideMode(s string) (HideMode, error) {
	switch s {
	case "auto":
		return HideAuto, nil
	case "on":
		return HideOn, nil
	case "off":
		return HideOff, nil
	}
	return 0, fmt.Errorf("CPUID hiding %q: give auto, on or off", s)
}

// Config describes one VM.
type Config struct {
	KVMPath  string // usually /dev/kvm
	Kernel   []byte // a bzImage or an ELF vmlinux
	Initrd   []byte // nil for none
	Cmdline  string
	MemSize  uint64
	CPUs     int
	Boot     BootPath
	CacheDir string // for decompressed kernels; "" disables the cache
	Hide     HideMode
	// Devices are the optional devices the VM gets (govmm -device).
	Devices []Device
	// PIT says whose 8254 the guest sees: KVM's (the default) or govmm's.
	PIT PITMode

	// SerialOut receives the guest's COM1 output.
	SerialOut io.Writer
	// SerialIn, if set, is read for COM1 input. A terminal is put in raw
	// mode; Ctrl-A x stops the VM.
	SerialIn *os.File
	// Log receives the VMM's own messages (boot-timer marks, verbose
	// reports). nil discards them.
	Log io.Writer
	// Verbose adds the boot path, layout and exit statistics to Log.
	Verbose bool
	// Start is when the VMM started, for boot-timer marks. Zero means now.
	Start time.Time
	// NoDebugDevices leaves out govmm's guest-visible debug devices: the
	// debug-exit device (a guest could choose the VMM's exit status and
	// write boot-timer lines to Log) and the serial port's MMIO alias.
	// For guests that are not trusted; the test guests and govmm exec's
	// agent need them.
	NoDebugDevices bool
	// Observer, if set, is installed on every vCPU before it first runs:
	// the exit tracer, statistics and flight recorder (package trace). A
	// machine built again from the same Config (govmm -reboot restart)
	// gets it too.
	Observer vcpu.Observer
	// Confine, if set, is called by Run once the console is open and
	// before any vCPU runs, on the goroutine that called Run: the place
	// for a seccomp filter (package seccomp), which then covers every
	// thread that runs the guest. An error ends Run before the guest
	// starts.
	Confine func() error
	// Restore, if set, rebuilds a saved guest instead of booting: RAM and
	// the state of every part come from it, and Kernel, Initrd and
	// Cmdline are not used (state.go). The machine's shape (RAM, vCPUs,
	// devices, PIT) must be the saved one's: ApplySaved sets it.
	Restore *Restore
}

func (c *Config) validate() error {
	if len(c.Kernel) == 0 && !c.restoring() {
		return fmt.Errorf("no kernel image given")
	}
	if c.MemSize == 0 {
		return fmt.Errorf("guest RAM size is zero")
	}
	if c.CPUs < 1 {
		return fmt.Errorf("%d vCPUs: give at least 1", c.CPUs)
	}
	return nil
}
