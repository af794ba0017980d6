// Package trace shows what a guest makes its VMM do: a JSON line per exit
// (-trace FILE), exit statistics per reason and per device with KVM's own
// counters beside them, and a flight recorder of the last exits, dumped
// when a guest fails. Each is a vcpu.Observer; with none installed the
// run loop pays nothing.
//
// An exit is the moment the guest stops running and the VMM gets control:
// KVM_RUN returns with a reason (KVM_EXIT_IO for a port access the kernel
// left to user space, KVM_EXIT_MMIO for an access to an address with no
// RAM, KVM_EXIT_DEBUG for a single step or a breakpoint, ...). Everything
// a device model does happens between two exits.
package trace

import (
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Info is one exit decoded for people: what kind, where, which way, the
// data, and the device that owns the address. It holds no copies: Data
// aliases the exit, Device the bus's name.
type Info struct {
	Reason kvm.ExitReason
	Space  devices.Space // PortIO or MMIO, for Reason ExitIO and ExitMMIO
	Addr   uint64        // the port or the guest-physical address
	Size   int           // bytes per access
	Count  int           // accesses: more than one for rep ins/outs
	Write  bool          // out, or an MMIO write
	Data   []byte        // what was written, or what the device answered
	Device string        // the device's name on the bus; "" when none claims it
}

// Access says whether the exit is a port or MMIO access.
func (i *Info) Access() bool { return i.Reason == kvm.ExitIO || i.Reason == kvm.ExitMMIO }

// Dir is "in"/"out" for a port, "read"/"write" for MMIO, "" otherwise.
func (i *Info) Dir() string {
	switch {
	case i.Reason == kvm.ExitIO && i.Write:
		return "out"
	case i.Reason == kvm.ExitIO:
		return "in"
	case i.Reason == kvm.ExitMMIO && i.Write:
		return "write"
	case i.Reason == kvm.ExitMMIO:
		return "read"
	}
	return ""
}

// Value is the data of access i of the exit as a little-endian number.
func (i *Info) Value(n int) uint64 {
	var v uint64
	start := n * i.Size
	for k := min(i.Size, 8) - 1; k >= 0; k-- {
		if start+k < len(i.Data) {
			v = v<<8 | uint64(i.Data[start+k])
		}
	}
	return v
}

// Describe decodes an exit. buses names the device; either may be nil.
func Describe(exit kvm.Exit, ioBus, mmioBus *devices.Bus) Info {
	switch e := exit.(type) {
	case *kvm.IOExit:
		i := Info{Reason: kvm.ExitIO, Space: devices.PortIO, Addr: uint64(e.Port), Size: int(e.Size), Count: int(e.Count), Write: e.Out, Data: e.Data}
		i.Device = deviceAt(ioBus, i.Addr, i.Size)
		return i
	case *kvm.MMIOExit:
		i := Info{Reason: kvm.ExitMMIO, Space: devices.MMIO, Addr: e.Addr, Size: len(e.Data), Count: 1, Write: e.Write, Data: e.Data}
		i.Device = deviceAt(mmioBus, i.Addr, i.Size)
		return i
	}
	return Info{Reason: Reason(exit)}
}

// DescribeEvent decodes the exit of an observer's event.
func DescribeEvent(ev *vcpu.Event) Info {
	io, mmio := ev.State.Buses()
	return Describe(ev.Exit, io, mmio)
}

func deviceAt(b *devices.Bus, addr uint64, n int) string {
	if b == nil {
		return ""
	}
	if r, ok := b.Lookup(addr, max(n, 1)); ok {
		return r.Name
	}
	return ""
}

// Reason is the KVM exit reason of a decoded exit.
func Reason(exit kvm.Exit) kvm.ExitReason {
	switch e := exit.(type) {
	case *kvm.IOExit:
		return kvm.ExitIO
	case *kvm.MMIOExit:
		return kvm.ExitMMIO
	case *kvm.HLTExit:
		return kvm.ExitHLT
	case *kvm.ShutdownExit:
		return kvm.ExitShutdown
	case *kvm.SystemEventExit:
		return kvm.ExitSystemEvent
	case *kvm.FailEntryExit:
		return kvm.ExitFailEntry
	case *kvm.InternalErrorExit:
		return kvm.ExitInternalError
	case *kvm.DebugExit:
		return kvm.ExitDebug
	case *kvm.InterruptedExit:
		return kvm.ExitIntr
	case *kvm.UnknownExit:
		return e.Reason
	}
	return kvm.ExitUnknown
}

// DR6 bits (Intel SDM vol. 3, 18.2.3 "Debug Status Register").
const (
	dr6B0 = 1 << 0  // breakpoint 0 (DR0) matched; B1-B3 follow
	dr6BD = 1 << 13 // a debug register access was detected
	dr6BS = 1 << 14 // single step
	dr6BT = 1 << 15 // task switch
)

// DR6 names the causes a debug exit's DR6 reports: "single-step",
// "breakpoint 0" (DR0) and so on, joined with "+"; "int3" for a #BP.
func DR6(e *kvm.DebugExit) string {
	if e.Exception == 3 {
		return "int3"
	}
	s := ""
	add := func(w string) {
		if s != "" {
			s += "+"
		}
		s += w
	}
	if e.DR6&dr6BS != 0 {
		add("single-step")
	}
	for i := range 4 {
		if e.DR6&(dr6B0<<i) != 0 {
			add("breakpoint " + string(rune('0'+i)))
		}
	}
	if e.DR6&dr6BD != 0 {
		add("debug-register access")
	}
	if e.DR6&dr6BT != 0 {
		add("task switch")
	}
	if s == "" {
		s = "unknown"
	}
	return s
}
