package trace

import (
	"bufio"
	"io"
	"strconv"
	"sync"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Writer is the exit tracer: one JSON object per line for every exit the
// guest makes to user space, in the order they happen. Every line has
//
//	seq     the exit's number, from 1, over all vCPUs
//	vcpu    the vCPU
//	reason  KVM's name for it (KVM_EXIT_IO, KVM_EXIT_MMIO, ...)
//	ns      nanoseconds KVM_RUN ran before it (the guest, and KVM's own work)
//	vmm_ns  nanoseconds the VMM took to handle it
//	mode    the CPU mode: real, protected16, protected, compat, long, vm86
//	rip     the instruction that made the exit ("0x..."; see FindCulprit)
//	insn    that instruction, disassembled in the mode (Intel syntax)
//
// and per reason
//
//	KVM_EXIT_IO              port, size, dir ("in"/"out"), data, device, and count for rep ins/outs
//	KVM_EXIT_MMIO            addr, size, dir ("read"/"write"), data, device
//	KVM_EXIT_DEBUG           exception, dr6 (hex), why (single-step, breakpoint N, int3), pc
//	KVM_EXIT_INTERNAL_ERROR  suberror, bytes (the instruction KVM could not emulate)
//	KVM_EXIT_SYSTEM_EVENT    event (shutdown, reset, ...)
//	KVM_EXIT_FAIL_ENTRY      hw_reason
//
// data is the value read or written as a hex number (little-endian, as
// the guest's register held it); with count above 1, the values separated
// by spaces. device is the name of the device that owns the port or
// address, and is absent when none does. rip and insn are absent when the
// instruction could not be read or matched; next_rip is RIP at the exit
// when the guest had already moved past the instruction. Exits KVM_RUN
// took because a signal interrupted it are not the guest's and are left
// out.
//
// Writes are buffered: Flush when the VM is done.
type Writer struct {
	emulated bool

	mu      sync.Mutex
	w       *bufio.Writer
	line    []byte
	seq     uint64
	err     error
	culprit []culpritSlot // by vCPU: what Exit found, for Handled
}

type culpritSlot struct {
	c  Culprit
	ok bool
}

// NewWriter writes the trace of a VM with vcpus vCPUs to w. emulated
// says KVM emulates port I/O (PVM hosts), which FindCulprit needs.
func NewWriter(w io.Writer, vcpus int, emulated bool) *Writer {
	return &Writer{emulated: emulated, w: bufio.NewWriterSize(w, 64<<10), culprit: make([]culpritSlot, vcpus)}
}

// Exit finds the instruction behind the exit while the registers are as
// the exit left them.
func (t *Writer) Exit(ev *vcpu.Event) vcpu.Action {
	if ev.Requested || ev.VCPU >= len(t.culprit) {
		return vcpu.Continue
	}
	if _, ok := ev.Exit.(*kvm.InterruptedExit); ok {
		return vcpu.Continue
	}
	c, ok := FindCulprit(ev.State, ev.Exit, t.emulated)
	t.culprit[ev.VCPU] = culpritSlot{c, ok}
	return vcpu.Continue
}

// Handled writes the exit's line, with the data a read returned.
func (t *Writer) Handled(ev *vcpu.Event) {
	if _, ok := ev.Exit.(*kvm.InterruptedExit); ok || ev.VCPU >= len(t.culprit) {
		return
	}
	info := DescribeEvent(ev)
	slot := t.culprit[ev.VCPU]
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	b := t.line[:0]
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, t.seq, 10)
	b = append(b, `,"vcpu":`...)
	b = strconv.AppendInt(b, int64(ev.VCPU), 10)
	b = appendString(b, "reason", info.Reason.String())
	b = append(b, `,"ns":`...)
	b = strconv.AppendInt(b, int64(ev.InRun), 10)
	b = append(b, `,"vmm_ns":`...)
	b = strconv.AppendInt(b, int64(ev.Handling), 10)
	if slot.ok {
		b = appendString(b, "mode", slot.c.Insn.Mode.String())
		b = appendHex(b, "rip", slot.c.RIP)
		b = appendString(b, "insn", slot.c.Insn.Text)
		if slot.c.Done {
			b = appendHex(b, "next_rip", slot.c.Next)
		}
	}
	b = appendDetail(b, ev.Exit, &info)
	b = append(b, "}\n"...)
	t.line = b
	if t.err == nil {
		_, t.err = t.w.Write(b)
	}
}

// appendDetail adds the keys particular to the exit's reason.
func appendDetail(b []byte, exit kvm.Exit, info *Info) []byte {
	switch e := exit.(type) {
	case *kvm.IOExit, *kvm.MMIOExit:
		if info.Reason == kvm.ExitIO {
			b = appendHex(b, "port", info.Addr)
		} else {
			b = appendHex(b, "addr", info.Addr)
		}
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, int64(info.Size), 10)
		b = appendString(b, "dir", info.Dir())
		if info.Count > 1 {
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, int64(info.Count), 10)
		}
		b = append(b, `,"data":"`...)
		for i := range max(info.Count, 1) {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, "0x"...)
			b = strconv.AppendUint(b, info.Value(i), 16)
		}
		b = append(b, '"')
		if info.Device != "" {
			b = appendString(b, "device", info.Device)
		}
	case *kvm.DebugExit:
		b = append(b, `,"exception":`...)
		b = strconv.AppendUint(b, uint64(e.Exception), 10)
		b = appendHex(b, "dr6", e.DR6)
		b = appendString(b, "why", DR6(e))
		b = appendHex(b, "pc", e.PC)
	case *kvm.InternalErrorExit:
		b = appendString(b, "suberror", e.Suberror.String())
		if insn := e.Instruction(); insn != nil {
			b = append(b, `,"bytes":"`...)
			for i, c := range insn {
				if i > 0 {
					b = append(b, ' ')
				}
				b = append(b, hexDigits[c>>4], hexDigits[c&15])
			}
			b = append(b, '"')
		}
	case *kvm.SystemEventExit:
		b = appendString(b, "event", e.Type.String())
	case *kvm.FailEntryExit:
		b = appendHex(b, "hw_reason", e.Reason)
	}
	return b
}

// Flush writes out what is buffered and returns the first write error.
func (t *Writer) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.w.Flush(); err != nil && t.err == nil {
		t.err = err
	}
	return t.err
}

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, key string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"0x`...)
	b = strconv.AppendUint(b, v, 16)
	return append(b, '"')
}

// appendString adds ,"key":"value" with value escaped as JSON requires
// (RFC 8259, section 7).
func appendString(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':', '"')
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
