package devices

// An Intel 8254 programmable interval timer (82C54 data sheet), the PC's
// PIT, for `-pit user`: KVM's in-kernel PIT is the default, and this model
// lets a learner see the guest's PIT accesses as exits.
//
// Offsets (from port 0x40): 0-2 counters 0-2 (data), 3 the control word
// (write only); PITPort61Offset is port 0x61, system control port B, whose
// bits Linux uses to gate counter 2 and to watch its output when it
// calibrates the TSC.
//
// Counter 0 drives IRQ 0: a rising edge of its OUT pulses the line. The
// model keeps no running count: it computes each counter's value from the
// time elapsed since its count was loaded, at 1.193182 MHz, and arms one
// host timer for counter 0's next rising edge. An edge the host was too
// late for is not repeated: the next one comes a period later (ticks are
// lost, as with KVM's PIT in "discard" mode, never bunched).
//
// Modes 0 (interrupt on terminal count), 2 (rate generator) and 3 (square
// wave) are modeled clock by clock as the data sheet's timing diagrams
// show, including the clock pulse that loads the count: after a count N
// is written, the first CLK loads N, and the next ones count down. Modes 1,
// 4 and 5 count down as mode 0 does but their OUT does not change (no
// PC software uses them). The counter latch command, the read-back
// command (count and status) and BCD counting work; gates of counters 0
// and 1 are tied high, counter 2's is port 0x61 bit 0. A count written
// in modes 2 and 3 while counting takes effect at the next reload, as the
// data sheet says.

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// PITHz is the 8254's input clock on a PC: 105/88 MHz (14.31818 MHz / 12),
// as Linux's PIT_TICK_RATE rounds it.
const PITHz = 1193182

// Ports and offsets.
const (
	PortPIT         = 0x40 // counters 0-2 at 0x40-0x42, control word at 0x43
	PortPITSize     = 4
	PortSpeaker     = 0x61 // system control port B
	PITControl      = 3    // offset of the control word
	PITPort61Offset = PortSpeaker - PortPIT

	IRQPIT = 0 // counter 0's output
)

// Control word fields (data sheet, "Control Word Format").
const (
	pitSCShift   = 6    // bits 7:6 select counter (3: read-back)
	pitRWShift   = 4    // bits 5:4 read/write: 0 latch, 1 LSB, 2 MSB, 3 LSB then MSB
	pitModeShift = 1    // bits 3:1 mode
	pitBCD       = 0x01 // bit 0 BCD counting
	pitReadBack  = 3

	pitRWLatch = 0
	pitRWLSB   = 1
	pitRWMSB   = 2
	pitRWBoth  = 3

	// Read-back command: bit 5 low latches counts, bit 4 low latches
	// status, bits 3:1 select counters 2, 1, 0.
	pitRBNoCount  = 1 << 5
	pitRBNoStatus = 1 << 4

	// Status byte (read-back): OUT, null count, then the control bits.
	PITStatusOut       = 1 << 7
	PITStatusNullCount = 1 << 6
)

// Port 0x61 bits.
const (
	Port61Gate2    = 1 << 0 // counter 2's gate (read-write)
	Port61Speaker  = 1 << 1 // speaker data enable (read-write, no sound here)
	Port61Refresh  = 1 << 4 // toggles every 15 us (read-only)
	Port61Out2     = 1 << 5 // counter 2's OUT (read-only)
	port61Writable = 0x0F   // bits 3:2 are the parity and I/O check enables
	refreshTicks   = 18     // PIT clocks per refresh toggle (15.085 us)
)

// Clock is the time the PIT counts by; the machine uses the host's and a
// test a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	Stop() bool
}

// HostClock is the host's clock.
type HostClock struct{}

// Now returns time.Now().
func (HostClock) Now() time.Time { return time.Now() }

// AfterFunc calls time.AfterFunc.
func (HostClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// pitChannel is one counter.
type pitChannel struct {
	ctrl  byte   // control bits 5:0 as written: RW, mode, BCD
	n     uint64 // the count in use, 1-65536 (or 1-10000 in BCD)
	start uint64 // tick of the write (or gate edge): N loads at start+1
	// loaded: a count has been written since the control word.
	loaded bool
	// frozen: the gate is low; d is the ticks counted before it fell.
	frozen bool
	d      uint64

	// A count written in modes 2 and 3 while counting waits for the
	// reload at tick pendStart+1.
	pending   bool
	pendN     uint64
	pendStart uint64

	writeMSB   bool   // the next data write is the MSB (RW 3)
	lsb        byte   // the LSB written, waiting for the MSB
	readMSB    bool   // the next unlatched read is the MSB (RW 3)
	latched    int    // bytes of latchedVal left to read (0 none)
	latchedVal uint16 // the latched count
	statusOK   bool   // a read-back status is latched
	status     byte
	gate       bool
	fired      bool // mode 0: its one rising edge has been raised
}

func (c *pitChannel) mode() byte {
	m := c.ctrl >> pitModeShift & 7
	if m >= 6 {
		m -= 4 // modes 6 and 7 are 2 and 3
	}
	return m
}

func (c *pitChannel) rw() byte { return c.ctrl >> pitRWShift & 3 }

// PIT is the 8254 and port 0x61.
type PIT struct {
	irq   IRQLine
	clock Clock
	epoch time.Time

	mu       sync.Mutex
	ch       [3]pitChannel
	port61   byte // the writable bits
	timer    Timer
	armed    uint64    // the tick the timer is armed for
	gen      uint64    // which timer is current
	lastEdge time.Time // when IRQ 0 was last raised
	closed   bool
	frozen   bool // Freeze: no timer until Restore

	pulseMu sync.Mutex // orders IRQ pulses

	ticks     atomic.Uint64 // interrupts raised
	irqErrors atomic.Uint64 // SetLevel calls that failed
}

// PITMinPeriod is the shortest time between two IRQ 0 edges the host
// timer is armed for, as KVM's PIT (min_timer_period_us) bounds it: a
// guest that programs a faster rate gets fewer interrupts, not a host
// busy firing timers.
const PITMinPeriod = 200 * time.Microsecond

// NewPIT returns a PIT as after reset: no counts loaded, counters 0 and 1
// gated on, counter 2 off.
func NewPIT(irq IRQLine, clock Clock) *PIT {
	p := &PIT{irq: irq, clock: clock, epoch: clock.Now()}
	for i := range p.ch {
		p.ch[i].gate = i != 2
	}
	return p
}

// tick is the PIT clock count at t since the epoch.
func (p *PIT) tick(t time.Time) uint64 {
	ns := t.Sub(p.epoch)
	if ns < 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(ns), PITHz)
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return q
}

// timeOf is the first instant at which tick T has happened.
func (p *PIT) timeOf(t uint64) time.Time {
	hi, lo := bits.Mul64(t, uint64(time.Second))
	q, r := bits.Div64(hi, lo, PITHz)
	if r != 0 {
		q++
	}
	return p.epoch.Add(time.Duration(q))
}

// elapsed is d, the clock pulses since the count's write (N is loaded at
// d = 1), at tick now; it applies a pending count whose reload came.
func (c *pitChannel) elapsed(now uint64) uint64 {
	if c.pending && now > c.pendStart {
		c.n, c.start, c.pending = c.pendN, c.pendStart, false
	}
	if c.frozen {
		return c.d
	}
	if now < c.start {
		return 0
	}
	return now - c.start
}

// countAndOut computes the counting element and OUT at tick now.
func (c *pitChannel) countAndOut(now uint64) (count uint64, out bool) {
	m := c.mode()
	if !c.loaded {
		return 0, m != 0 // mode 0: OUT low after the control word; others high
	}
	d := c.elapsed(now)
	n := c.n
	if d == 0 {
		return n, m != 0 // not loaded into the counting element yet
	}
	switch m {
	case 2:
		if c.frozen {
			return n - (d-1)%n, true // gate low: OUT high, counting stopped
		}
		cnt := n - (d-1)%n
		return cnt, cnt != 1 || n == 1
	case 3:
		t := (d - 1) % n
		if n%2 == 0 {
			half := n / 2
			if t < half {
				return n - 2*t, true
			}
			return n - 2*(t-half), c.frozen
		}
		hi := (n + 1) / 2
		if t < hi {
			if t == 0 {
				return n, true
			}
			return n - 1 - 2*(t-1), true
		}
		u := t - hi
		if u == 0 {
			return n, c.frozen
		}
		return n - 3 - 2*(u-1), c.frozen
	}
	// Mode 0 (and 1, 4, 5): N, N-1, ..., 0, then on past zero (the count
	// wraps, as the 16-bit counting element does).
	k := d - 1
	cnt := (n - k%65536 + 65536) % 65536
	if c.bcd() {
		cnt = (n + 10000 - k%10000) % 10000
	}
	if m == 0 {
		return cnt, k >= n
	}
	return cnt, m != 1 // modes 4, 5: high; mode 1: low until triggered
}

func (c *pitChannel) bcd() bool { return c.ctrl&pitBCD != 0 }

// counterValue is what a read of the counting element gives: 16 bits,
// BCD digits in BCD mode (65536 and 10000 read as 0).
func (c *pitChannel) counterValue(now uint64) uint16 {
	v, _ := c.countAndOut(now)
	if c.bcd() {
		v %= 10000
		return uint16(v/1000<<12 | v/100%10<<8 | v/10%10<<4 | v%10)
	}
	return uint16(v)
}

// nextEdge is the tick of counter c's next rising OUT edge after tick
// now, if there is one: every reload in modes 2 and 3, the terminal count
// in mode 0.
func (c *pitChannel) nextEdge(now uint64) (uint64, bool) {
	if !c.loaded || c.frozen || !c.gate {
		return 0, false
	}
	d := c.elapsed(now)
	switch c.mode() {
	case 0:
		if c.fired {
			return 0, false
		}
		return c.start + c.n + 1, true
	case 2, 3:
		if d == 0 {
			return c.start + 1 + c.n, true
		}
		// A pending count's reload is at the end of this period, which
		// is this edge; elapsed applies it once that tick has passed.
		k := (d-1)/c.n + 1
		return c.start + 1 + k*c.n, true
	}
	return 0, false
}

// Read handles the counters (offsets 0-2), the control word (3: reads
// 0xFF) and port 0x61.
func (p *PIT) Read(off uint64, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.tick(p.clock.Now())
	for i := range b {
		b[i] = p.readByte(off+uint64(i), now)
	}
}

func (p *PIT) readByte(off, now uint64) byte {
	switch {
	case off < 3:
		return p.ch[off].readData(now)
	case off == PITPort61Offset:
		v := p.port61 & port61Writable
		if now/refreshTicks%2 == 1 {
			v |= Port61Refresh
		}
		if _, out := p.ch[2].countAndOut(now); out {
			v |= Port61Out2
		}
		return v
	}
	return 0xFF
}

func (c *pitChannel) readData(now uint64) byte {
	if c.statusOK {
		c.statusOK = false
		return c.status
	}
	if c.latched > 0 {
		v := c.latchedVal
		c.latched--
		switch c.rw() {
		case pitRWMSB:
			return byte(v >> 8)
		case pitRWBoth:
			if c.latched == 1 {
				return byte(v) // the LSB first, the MSB next
			}
			return byte(v >> 8)
		}
		return byte(v)
	}
	v := c.counterValue(now)
	switch c.rw() {
	case pitRWMSB:
		return byte(v >> 8)
	case pitRWBoth:
		c.readMSB = !c.readMSB
		if !c.readMSB {
			return byte(v >> 8)
		}
	}
	return byte(v)
}

// Write handles the counters, the control word and port 0x61.
func (p *PIT) Write(off uint64, b []byte) {
	p.mu.Lock()
	now := p.tick(p.clock.Now())
	for i, v := range b {
		p.writeByte(off+uint64(i), v, now)
	}
	p.rearmLocked(now)
	p.mu.Unlock()
}

func (p *PIT) writeByte(off uint64, v byte, now uint64) {
	switch {
	case off < 3:
		p.ch[off].writeData(v, now)
	case off == PITControl:
		p.control(v, now)
	case off == PITPort61Offset:
		p.port61 = v & port61Writable
		p.ch[2].setGate(v&Port61Gate2 != 0, now)
	}
}

// control handles a control word: a mode, a counter latch, or read-back.
func (p *PIT) control(v byte, now uint64) {
	sc := v >> pitSCShift
	if sc == pitReadBack {
		for i := range p.ch {
			if v&(2<<i) == 0 {
				continue
			}
			c := &p.ch[i]
			if v&pitRBNoStatus == 0 && !c.statusOK {
				c.statusOK = true
				c.status = c.statusByte(now)
			}
			if v&pitRBNoCount == 0 {
				c.latch(now)
			}
		}
		return
	}
	c := &p.ch[sc]
	if v>>pitRWShift&3 == pitRWLatch {
		c.latch(now)
		return
	}
	*c = pitChannel{ctrl: v & 0x3F, gate: c.gate}
}

func (c *pitChannel) statusByte(now uint64) byte {
	s := c.ctrl & 0x3F
	if _, out := c.countAndOut(now); out {
		s |= PITStatusOut
	}
	if !c.loaded || c.writeMSB || c.elapsed(now) == 0 {
		s |= PITStatusNullCount
	}
	return s
}

// latch freezes the count for reading; a second latch before the count
// is read is ignored (data sheet).
func (c *pitChannel) latch(now uint64) {
	if c.latched > 0 {
		return
	}
	c.latchedVal = c.counterValue(now)
	c.latched = 1
	if c.rw() == pitRWBoth {
		c.latched = 2
	}
}

func (c *pitChannel) writeData(v byte, now uint64) {
	var n uint64
	switch c.rw() {
	case pitRWLSB:
		n = uint64(v)
	case pitRWMSB:
		n = uint64(v) << 8
	case pitRWBoth:
		if !c.writeMSB {
			c.writeMSB, c.lsb = true, v
			if c.mode() == 0 && c.loaded {
				// Mode 0: writing the first byte stops the count; OUT
				// goes low (it is low until the new count ends).
				c.frozen, c.d, c.fired = true, 0, false
			}
			return
		}
		c.writeMSB = false
		n = uint64(v)<<8 | uint64(c.lsb)
	default:
		return // a latch command, not a mode: data writes do nothing
	}
	c.load(n, now)
}

// load starts (or, in modes 2 and 3 while counting, queues) count n.
func (c *pitChannel) load(n, now uint64) {
	if c.bcd() {
		n = n>>12&0xF*1000 + n>>8&0xF*100 + n>>4&0xF*10 + n&0xF
		if n == 0 {
			n = 10000
		}
	} else if n == 0 {
		n = 65536
	}
	m := c.mode()
	if (m == 2 || m == 3) && c.loaded && !c.frozen && c.gate && c.elapsed(now) > 0 {
		d := c.elapsed(now)
		k := (d-1)/c.n + 1
		c.pending, c.pendN, c.pendStart = true, n, c.start+k*c.n
		return
	}
	c.n, c.start, c.loaded, c.fired, c.pending = n, now, true, false, false
	c.frozen = !c.gate
	c.d = 0
}

// setGate drives a counter's gate (counter 2's, through port 0x61).
func (c *pitChannel) setGate(high bool, now uint64) {
	if high == c.gate {
		return
	}
	c.gate = high
	if !c.loaded {
		return
	}
	if !high {
		c.d, c.frozen = c.elapsed(now), true
		return
	}
	c.frozen = false
	switch c.mode() {
	case 0, 4:
		c.start = now - c.d // counting resumes where it stopped
	default:
		c.start, c.fired, c.pending = now, false, false // a rising gate restarts
	}
}

// rearmLocked arms the host timer for counter 0's next rising edge, or
// stops it when there is none.
func (p *PIT) rearmLocked(now uint64) {
	e, ok := p.ch[0].nextEdge(now)
	if p.closed || p.frozen {
		ok = false
	}
	if ok && p.timer != nil && e == p.armed {
		return // already armed for it
	}
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if !ok {
		return
	}
	at := p.timeOf(e)
	if earliest := p.lastEdge.Add(PITMinPeriod); at.Before(earliest) {
		at = earliest
	}
	gen := p.gen
	p.armed = e
	p.timer = p.clock.AfterFunc(at.Sub(p.clock.Now()), func() { p.edge(gen) })
}

// edge runs when counter 0's OUT should have risen: it raises IRQ 0 and
// arms the timer for the edge after.
func (p *PIT) edge(gen uint64) {
	p.mu.Lock()
	if gen != p.gen || p.closed {
		p.mu.Unlock()
		return // reprogrammed since
	}
	t := p.clock.Now()
	now := p.tick(t)
	c := &p.ch[0]
	if c.mode() == 0 {
		c.fired = true
	}
	p.lastEdge = t
	p.timer = nil // this one has fired
	p.rearmLocked(now)
	p.pulseMu.Lock() // before mu is let go, so pulses keep their order
	p.mu.Unlock()
	defer p.pulseMu.Unlock()
	p.ticks.Add(1)
	if err := p.irq.SetLevel(true); err != nil {
		p.irqErrors.Add(1)
	}
	if err := p.irq.SetLevel(false); err != nil {
		p.irqErrors.Add(1)
	}
}

// Stats returns the interrupts raised and the SetLevel calls that failed.
func (p *PIT) Stats() (ticks, irqErrors uint64) {
	return p.ticks.Load(), p.irqErrors.Load()
}

// Close stops the timer and waits for an interrupt being raised; the PIT
// raises none after it returns, so the interrupt controller may go.
func (p *PIT) Close() {
	p.mu.Lock()
	p.closed = true
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	// An edge that took mu before closed was set holds pulseMu until its
	// pulse is done (edge takes pulseMu before it lets mu go).
	p.pulseMu.Lock()
	p.pulseMu.Unlock() //lint:ignore SA2001 an empty critical section: waiting for the pulse is the point
}
