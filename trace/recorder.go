package trace

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Recorder is the flight recorder: it keeps the last exits of every vCPU
// in a ring, cheaply (no system call of its own: RIP is kept only when
// another observer read the registers for the same exit), so that when a
// guest triple-faults or the VMM gives up, the exits that led there can
// be printed.
type Recorder struct {
	mu   sync.Mutex
	ring []Record
	n    uint64   // exits recorded so far; the next goes to ring[n%len]
	open []uint64 // by vCPU: the Seq of the record Exit made, for Handled; 0 when none
}

// Record is one exit in the flight recorder.
type Record struct {
	Seq      uint64
	VCPU     int
	Info     Info // Data points into Bytes
	Bytes    [8]byte
	RIP      uint64
	HaveRIP  bool
	InRun    time.Duration
	Handling time.Duration
	Handled  bool // the VMM handled it (false for the exit the run died at, and for those a debugger consumed)
	Error    string
}

// NewRecorder keeps the last n exits of a VM with vcpus vCPUs.
func NewRecorder(n, vcpus int) *Recorder {
	return &Recorder{ring: make([]Record, max(n, 1)), open: make([]uint64, vcpus)}
}

// Exit records the exit as it arrives.
func (r *Recorder) Exit(ev *vcpu.Event) vcpu.Action {
	if ev.Requested || ev.VCPU >= len(r.open) {
		return vcpu.Continue
	}
	if _, ok := ev.Exit.(*kvm.InterruptedExit); ok {
		return vcpu.Continue
	}
	info := DescribeEvent(ev)
	regs, have := ev.State.CachedRegs()
	r.mu.Lock()
	defer r.mu.Unlock()
	slot := int(r.n % uint64(len(r.ring)))
	r.n++
	rec := &r.ring[slot]
	*rec = Record{Seq: r.n, VCPU: ev.VCPU, Info: info, InRun: ev.InRun, HaveRIP: have}
	if have {
		rec.RIP = regs.RIP
	}
	rec.keepData()
	switch e := ev.Exit.(type) {
	case *kvm.InternalErrorExit, *kvm.ShutdownExit, *kvm.FailEntryExit, *kvm.DebugExit, *kvm.SystemEventExit, *kvm.UnknownExit:
		rec.Error = fmt.Sprint(e)
	}
	r.open[ev.VCPU] = rec.Seq
	return vcpu.Continue
}

// keepData copies the data into the record, which outlives the exit.
func (rec *Record) keepData() {
	n := copy(rec.Bytes[:], rec.Info.Data)
	rec.Info.Data = rec.Bytes[:n]
	rec.Info.Count = min(rec.Info.Count, max(n/max(rec.Info.Size, 1), 1))
}

// Handled adds what the VMM did: the data a read returned, its time.
func (r *Recorder) Handled(ev *vcpu.Event) {
	if ev.VCPU >= len(r.open) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.open[ev.VCPU]
	r.open[ev.VCPU] = 0
	if seq == 0 {
		return
	}
	rec := &r.ring[(seq-1)%uint64(len(r.ring))]
	if rec.Seq != seq {
		return // the ring has gone round since
	}
	if info := DescribeEvent(ev); info.Access() {
		rec.Info.Data = info.Data
		rec.keepData()
	}
	rec.Handling, rec.Handled = ev.Handling, !ev.Consumed()
}

// Records returns the recorded exits, oldest first.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := uint64(len(r.ring))
	start := uint64(0)
	if r.n > size {
		start = r.n - size
	}
	out := make([]Record, 0, r.n-start)
	for i := start; i < r.n; i++ {
		rec := r.ring[i%size]
		rec.Info.Data = rec.Bytes[:len(rec.Info.Data)]
		out = append(out, rec)
	}
	return out
}

// Total is how many exits were recorded, including those the ring has
// dropped since.
func (r *Recorder) Total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Dump writes the last n records (all with n <= 0), oldest first, one a
// line.
func (r *Recorder) Dump(w io.Writer, n int) {
	recs := r.Records()
	if n > 0 && len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	for i := range recs {
		fmt.Fprintln(w, recs[i].String())
	}
}

// String is the record on one line.
func (rec *Record) String() string {
	s := fmt.Sprintf("#%d vcpu%d %s", rec.Seq, rec.VCPU, Line(&rec.Info))
	if rec.HaveRIP {
		s += fmt.Sprintf(" rip=%#x", rec.RIP)
	}
	if rec.Error != "" && !rec.Info.Access() {
		s += " (" + rec.Error + ")"
	}
	s += fmt.Sprintf(" [guest %v", round(rec.InRun))
	if rec.Handled {
		s += fmt.Sprintf(", vmm %v]", round(rec.Handling))
	} else {
		s += ", not handled]"
	}
	return s
}

// Line is an exit in words, on one line, the same for the flight recorder,
// the stepper and golden traces: "KVM_EXIT_IO out port 0x3f8 size 1 data
// 0x48 'H' -> serial (COM1)".
func Line(i *Info) string {
	if !i.Access() {
		return i.Reason.String()
	}
	s := i.Reason.String() + " " + i.Dir()
	if i.Reason == kvm.ExitIO {
		s += fmt.Sprintf(" port %#x", i.Addr)
	} else {
		s += fmt.Sprintf(" %#x", i.Addr)
	}
	s += fmt.Sprintf(" size %d", i.Size)
	if i.Count > 1 {
		s += fmt.Sprintf(" count %d", i.Count)
	}
	s += " data"
	for k := range max(i.Count, 1) {
		v := i.Value(k)
		s += fmt.Sprintf(" %#x", v)
		if i.Size == 1 && v >= 0x20 && v < 0x7f {
			s += fmt.Sprintf(" %q", rune(v))
		}
	}
	if i.Device != "" {
		s += " -> " + i.Device
	} else {
		s += " -> no device"
	}
	return s
}
