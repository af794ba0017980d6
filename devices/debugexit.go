package devices

// govmm's debug and test device: lets a guest end the VM with a status,
// timestamp its boot, and measure exit latency. It is registered at port
// 0xf4 (PortDebugExit, 4 ports) and also at an MMIO window, because guest
// ring-3 code cannot do port I/O on PVM hosts but can touch MMIO.
//
//	off  read                         write
//	0    0                            exit status: the VM ends with the byte
//	1    0                            boot-timer mark: logs the time since
//	                                  the VMM started, labelled with the byte
//	2    low byte of the write count  scratch: counted, nothing else
//	3    0                            ignored
//
// A wider access at an offset uses its low byte: a 2- or 4-byte write at
// offset 0 exits with the low byte.
//
// Unlike QEMU's isa-debug-exit, which exits with (v<<1)|1 so that a guest
// can never exit 0, writing v here exits with exactly v: 0 is success.
//
// Everything here is guest-visible and guest-driven: a guest that finds the
// device can choose the VMM's exit status and write lines to its log. The
// log is rate-limited (MarkBurst marks, then one per MarkInterval; the
// next mark let through says how many were left out, and MarksHeldBack
// counts them all), and the VMM can leave the device out for guests it
// does not trust (govmm -debug-devices off).
//
// A mark's line is written on the vCPU's thread, under no lock of the
// device's: its point is the time it reaches the log, and the rate limit
// bounds how often a guest can make a vCPU wait for a slow log.

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Register offsets.
const (
	DebugExitStatus  = 0 // write: end the VM with this status
	DebugExitMark    = 1 // write: log a boot-timer mark
	DebugExitScratch = 2 // write: count; read: the count's low byte
	DebugExitSize    = 4 // bytes of registers, at the port and in MMIO
)

// The boot-timer log's rate limit.
const (
	MarkBurst    = 20                     // marks logged before the limit applies
	MarkInterval = 100 * time.Millisecond // then one per interval
)

// DebugExit is the debug/test device. It is safe for concurrent use.
type DebugExit struct {
	onExit func(status int)
	start  time.Time
	now    func() time.Time

	logMu sync.Mutex // keeps lines whole on a log not safe for concurrent use
	log   io.Writer
	limit *logLimit

	scratch   atomic.Uint64
	marks     atomic.Uint64
	logErrors atomic.Uint64
}

// DebugExitState is the state of a DebugExit.
type DebugExitState struct {
	ScratchWrites uint64
	Marks         uint64
}

// NewDebugExit returns the device. onExit is called on the vCPU's thread
// when the guest writes a status; it should make the VM stop and return,
// not block. Marks are timed from start and written as lines to log.
func NewDebugExit(onExit func(status int), start time.Time, log io.Writer) *DebugExit {
	return &DebugExit{onExit: onExit, start: start, now: time.Now, log: log, limit: newLogLimit(MarkBurst, MarkInterval)}
}

// RestoreDebugExit rebuilds the device from st.
func RestoreDebugExit(st DebugExitState, onExit func(status int), start time.Time, log io.Writer) *DebugExit {
	d := NewDebugExit(onExit, start, log)
	d.Restore(st)
	return d
}

// Restore puts the counters in state st.
func (d *DebugExit) Restore(st DebugExitState) {
	d.scratch.Store(st.ScratchWrites)
	d.marks.Store(st.Marks)
}

// State returns the counters.
func (d *DebugExit) State() DebugExitState {
	return DebugExitState{ScratchWrites: d.scratch.Load(), Marks: d.marks.Load()}
}

// LogErrors counts marks that could not be written to the log.
func (d *DebugExit) LogErrors() uint64 { return d.logErrors.Load() }

// MarksHeldBack counts marks the rate limit kept out of the log.
func (d *DebugExit) MarksHeldBack() uint64 { return d.limit.heldBack() }

// Read returns the scratch count's low byte at DebugExitScratch, else 0.
func (d *DebugExit) Read(off uint64, p []byte) {
	clear(p)
	if off == DebugExitScratch && len(p) > 0 {
		p[0] = byte(d.scratch.Load())
	}
}

// Write acts on the low byte of p.
func (d *DebugExit) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	v := p[0]
	switch off {
	case DebugExitStatus:
		if d.onExit != nil {
			d.onExit(int(v))
		}
	case DebugExitMark:
		d.mark(v)
	case DebugExitScratch:
		d.scratch.Add(1)
	}
}

func (d *DebugExit) mark(label byte) {
	d.marks.Add(1)
	now := d.now()
	ok, heldBack := d.limit.allow(now)
	if !ok {
		return
	}
	since := now.Sub(d.start)
	var line []byte
	if heldBack > 0 {
		line = fmt.Appendf(line, "boot-timer: %d marks not logged (rate limit: %d, then one per %v)\n", heldBack, MarkBurst, MarkInterval)
	}
	line = fmt.Appendf(line, "boot-timer: mark %d (%#02x) at %d us (%v) since VMM start\n",
		label, label, since.Microseconds(), since.Round(time.Microsecond))
	d.logMu.Lock()
	defer d.logMu.Unlock()
	if _, err := d.log.Write(line); err != nil {
		d.logErrors.Add(1)
	}
}
