package devices

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// pitClock is a Clock that moves only when a test advances it, firing
// the timers that come due, in order, on the test's goroutine.
type pitClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*pitTimer
}

type pitTimer struct {
	c       *pitClock
	at      time.Time
	f       func()
	stopped bool
}

func newPITClock() *pitClock { return &pitClock{now: time.Unix(1_000_000, 0)} }

func (c *pitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *pitClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &pitTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *pitTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// advanceTo moves the clock to t, running each timer due on the way at
// its own time.
func (c *pitClock) advanceTo(t time.Time) {
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *pitTimer
		for len(c.timers) > 0 && c.timers[0].stopped {
			c.timers = c.timers[1:]
		}
		if len(c.timers) > 0 && !c.timers[0].at.After(t) {
			next = c.timers[0]
			c.timers = c.timers[1:]
			next.stopped = true
			if next.at.After(c.now) {
				c.now = next.at
			}
		}
		if next == nil {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		next.f()
	}
}

func (c *pitClock) advance(d time.Duration) { c.advanceTo(c.Now().Add(d)) }

// pulseCounter counts rising edges on a line and checks that it is left low.
type pulseCounter struct {
	mu    sync.Mutex
	high  bool
	edges int
}

func (l *pulseCounter) SetLevel(high bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if high && !l.high {
		l.edges++
	}
	l.high = high
	return nil
}

func (l *pulseCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.edges
}

// pitAt is a PIT whose clock sits exactly on a tick boundary, with
// helpers that move it to tick T after the last write.
type pitAt struct {
	t     *testing.T
	p     *PIT
	clock *pitClock
	irq   *pulseCounter
	t0    uint64 // the tick of the last write
}

func newPITAt(t *testing.T) *pitAt {
	c := newPITClock()
	irq := &pulseCounter{}
	p := NewPIT(irq, c)
	c.advanceTo(p.timeOf(1000)) // not at the epoch: counting is relative
	return &pitAt{t: t, p: p, clock: c, irq: irq, t0: 1000}
}

func (a *pitAt) out(port uint64, v byte) { regWrite(a.p, port, v); a.t0 = a.p.tick(a.clock.Now()) }
func (a *pitAt) in(port uint64) byte     { return regRead(a.p, port) }

// clk moves to d clock pulses after the last write.
func (a *pitAt) clk(d uint64) { a.clock.advanceTo(a.p.timeOf(a.t0 + d)) }

// readBack latches and reads counter ch's status and 16-bit count with a
// read-back command (RW must be LSB then MSB).
func (a *pitAt) readBack(ch int) (status byte, count uint16) {
	regWrite(a.p, PITControl, 0xC0|byte(2<<ch)) // latch count and status
	status = a.in(uint64(ch))
	lo := a.in(uint64(ch))
	hi := a.in(uint64(ch))
	return status, uint16(hi)<<8 | uint16(lo)
}

// TestPITModes checks each mode against the 82C54 data sheet's timing
// diagrams: after the control word and a count N, the first CLK pulse
// loads N and each later one counts; OUT as drawn there.
func TestPITModes(t *testing.T) {
	tests := []struct {
		name      string
		control   byte // counter 0, RW LSB then MSB
		n         uint16
		wantCount []uint16 // after 1, 2, ... pulses
		wantOut   []bool
	}{
		{
			name: "mode 0 count 3", control: 0x30, n: 3,
			wantCount: []uint16{3, 2, 1, 0, 0xFFFF, 0xFFFE},
			wantOut:   []bool{false, false, false, true, true, true},
		},
		{
			name: "mode 2 count 3", control: 0x34, n: 3,
			wantCount: []uint16{3, 2, 1, 3, 2, 1, 3},
			wantOut:   []bool{true, true, false, true, true, false, true},
		},
		{
			name: "mode 3 count 4", control: 0x36, n: 4,
			wantCount: []uint16{4, 2, 4, 2, 4, 2},
			wantOut:   []bool{true, true, false, false, true, true},
		},
		{
			name: "mode 3 count 5", control: 0x36, n: 5,
			wantCount: []uint16{5, 4, 2, 5, 2, 5, 4, 2},
			wantOut:   []bool{true, true, true, false, false, true, true, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newPITAt(t)
			regWrite(a.p, PITControl, tt.control)
			regWrite(a.p, 0, byte(tt.n))
			a.out(0, byte(tt.n>>8))
			// The data sheet's N before the first pulse: not loaded yet.
			if st, _ := a.readBack(0); st&PITStatusNullCount == 0 {
				t.Errorf("status before the load pulse = %#x, want NULL COUNT set", st)
			}
			for i := range tt.wantCount {
				d := uint64(i + 1)
				a.clk(d)
				st, cnt := a.readBack(0)
				if cnt != tt.wantCount[i] {
					t.Errorf("count after %d CLK = %#x, want %#x", d, cnt, tt.wantCount[i])
				}
				if got := st&PITStatusOut != 0; got != tt.wantOut[i] {
					t.Errorf("OUT after %d CLK = %v, want %v", d, got, tt.wantOut[i])
				}
				if st&0x3F != tt.control&0x3F {
					t.Errorf("status control bits = %#x, want %#x", st&0x3F, tt.control&0x3F)
				}
			}
		})
	}
}

// TestPITInterrupts counts IRQ 0 edges over time: one per period in the
// periodic modes, one in mode 0, none once closed.
func TestPITInterrupts(t *testing.T) {
	tests := []struct {
		name    string
		control byte
		n       uint16
		over    time.Duration
		want    int
	}{
		{"mode 2 at 1 kHz for 1 s", 0x34, 1193, time.Second, 1000},  // 1193 CLK = 999.85 us
		{"mode 3 at 100 Hz for 1 s", 0x36, 11932, time.Second, 99},  // 10000.2 us: the 100th edge is just after 1 s
		{"mode 0 count 1000: one edge", 0x30, 1000, time.Second, 1}, // at 839 us
		{"mode 2 count 2: bounded by the min period", 0x34, 2, 10 * time.Millisecond, int(10 * time.Millisecond / PITMinPeriod)},
		{"mode 2 count 0 is 65536: 18.2 Hz", 0x34, 0, time.Second, 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newPITAt(t)
			regWrite(a.p, PITControl, tt.control)
			regWrite(a.p, 0, byte(tt.n))
			a.out(0, byte(tt.n>>8))
			a.clock.advance(tt.over)
			if got := a.irq.count(); got != tt.want {
				t.Errorf("IRQ 0 edges in %v = %d, want %d", tt.over, got, tt.want)
			}
			if ticks, errs := a.p.Stats(); ticks != uint64(a.irq.count()) || errs != 0 {
				t.Errorf("Stats() = %d, %d; want %d, 0", ticks, errs, a.irq.count())
			}
			a.p.Close()
			before := a.irq.count()
			a.clock.advance(time.Second)
			if a.irq.count() != before {
				t.Errorf("IRQ 0 edges after Close: %d more", a.irq.count()-before)
			}
		})
	}
}

func TestPITLatchAndReadModes(t *testing.T) {
	a := newPITAt(t)
	// Mode 2, LSB then MSB, count 0x1234.
	regWrite(a.p, PITControl, 0x34)
	regWrite(a.p, 0, 0x34)
	a.out(0, 0x12)
	a.clk(0x10)                     // count = 0x1234 - 0xF = 0x1225
	regWrite(a.p, PITControl, 0x00) // counter latch, counter 0
	a.clk(0x20)                     // the latch holds
	regWrite(a.p, PITControl, 0x00) // a second latch before reading is ignored
	if lo, hi := a.in(0), a.in(0); lo != 0x25 || hi != 0x12 {
		t.Errorf("latched count = %#x %#x, want 0x25 0x12", lo, hi)
	}
	// Unlatched: LSB then MSB of the live count.
	if lo, hi := a.in(0), a.in(0); lo != 0x15 || hi != 0x12 {
		t.Errorf("live count after 0x20 CLK = %#x %#x, want 0x15 0x12", lo, hi)
	}
	// LSB only and MSB only.
	regWrite(a.p, PITControl, 0x54) // counter 1, LSB only, mode 2
	a.out(1, 0x80)
	a.clk(3)
	if got := a.in(1); got != 0x7E {
		t.Errorf("counter 1 (LSB only, N 0x80) after 3 CLK = %#x, want 0x7e", got)
	}
	regWrite(a.p, PITControl, 0x64) // counter 1, MSB only, mode 2: N = 0x0200
	a.out(1, 0x02)
	a.clk(0x101)
	if got := a.in(1); got != 0x01 {
		t.Errorf("counter 1 (MSB only, N 0x200) MSB after 0x101 CLK = %#x, want 0x01", got)
	}
	// BCD: 100 counts down in decimal digits.
	regWrite(a.p, PITControl, 0x31) // counter 0, mode 0, BCD
	regWrite(a.p, 0, 0x00)
	a.out(0, 0x01)
	a.clk(3)
	if _, cnt := a.readBack(0); cnt != 0x0098 {
		t.Errorf("BCD count of 100 after 3 CLK = %#x, want 0x0098", cnt)
	}
	// The control port reads nothing.
	if got := a.in(PITControl); got != 0xFF {
		t.Errorf("read of the control word port = %#x, want 0xff", got)
	}
}

// TestPITCounter2Gate follows Linux's TSC calibration (pit_calibrate_tsc):
// gate counter 2 on through port 0x61, program mode 0, and watch OUT2 in
// port 0x61 bit 5.
func TestPITCounter2Gate(t *testing.T) {
	a := newPITAt(t)
	if got := a.in(PITPort61Offset); got&(Port61Gate2|Port61Out2) != 0 {
		t.Errorf("port 0x61 at reset = %#x, want gate and OUT2 low", got)
	}
	regWrite(a.p, PITPort61Offset, Port61Gate2)
	regWrite(a.p, PITControl, 0xB0) // counter 2, LSB then MSB, mode 0
	regWrite(a.p, 2, 100)
	a.out(2, 0)
	a.clk(100)
	if got := a.in(PITPort61Offset); got&Port61Out2 != 0 {
		t.Errorf("port 0x61 after 100 CLK of a count of 100 = %#x, want OUT2 low", got)
	}
	a.clk(101)
	if got := a.in(PITPort61Offset); got&Port61Out2 == 0 || got&Port61Gate2 == 0 {
		t.Errorf("port 0x61 after 101 CLK = %#x, want OUT2 and the gate high", got)
	}
	// Gate low in mode 0 holds the count; gate high resumes it.
	regWrite(a.p, PITControl, 0xB0)
	regWrite(a.p, 2, 50)
	a.out(2, 0)
	a.clk(11) // count 40
	regWrite(a.p, PITPort61Offset, 0)
	a.clk(1000)
	if _, cnt := a.readBack(2); cnt != 40 {
		t.Errorf("count with the gate low = %d, want 40 (held)", cnt)
	}
	a.out(PITPort61Offset, Port61Gate2)
	a.clk(5)
	if _, cnt := a.readBack(2); cnt != 35 {
		t.Errorf("count 5 CLK after the gate rose = %d, want 35", cnt)
	}
	// The refresh bit toggles every 18 clocks.
	r1 := a.in(PITPort61Offset) & Port61Refresh
	a.clk(5 + refreshTicks)
	if r2 := a.in(PITPort61Offset) & Port61Refresh; r1 == r2 {
		t.Errorf("port 0x61 refresh bit did not toggle over %d CLK", refreshTicks)
	}
}

// TestPITNewCountAtReload: in mode 2 a count written while counting waits
// for the end of the period.
func TestPITNewCountAtReload(t *testing.T) {
	a := newPITAt(t)
	regWrite(a.p, PITControl, 0x34)
	regWrite(a.p, 0, 10)
	a.out(0, 0)
	a.clk(3) // count 8
	regWrite(a.p, 0, 4)
	regWrite(a.p, 0, 0) // N 4 from the next reload, at d = 11
	a.clk(10)
	if _, cnt := a.readBack(0); cnt != 1 {
		t.Errorf("count at the end of the old period = %d, want 1", cnt)
	}
	for i, want := range []uint16{4, 3, 2, 1, 4} {
		a.clk(uint64(11 + i))
		if _, cnt := a.readBack(0); cnt != want {
			t.Errorf("count %d CLK into the new period = %d, want %d", i+1, cnt, want)
		}
	}
}

// blockingLine holds the first SetLevel until released, and counts calls.
type blockingLine struct {
	entered, release chan struct{}
	mu               sync.Mutex
	calls            int
}

func (l *blockingLine) SetLevel(bool) error {
	l.mu.Lock()
	l.calls++
	first := l.calls == 1
	l.mu.Unlock()
	if first {
		close(l.entered)
		<-l.release
	}
	return nil
}

// TestPITCloseWaitsForPulse: Close returns only after a pulse in progress
// is done, and no pulse comes after it (the machine closes the VM next).
func TestPITCloseWaitsForPulse(t *testing.T) {
	line := &blockingLine{entered: make(chan struct{}), release: make(chan struct{})}
	p := NewPIT(line, HostClock{})
	regWrite(p, PITControl, 0x34)
	regWrite(p, 0, 0xA9)
	regWrite(p, 0, 0x04) // 1 kHz
	select {
	case <-line.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no IRQ 0 pulse within 10 s of programming 1 kHz")
	}
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a pulse was still being raised")
	case <-time.After(50 * time.Millisecond):
	}
	close(line.release)
	<-closed
	line.mu.Lock()
	n := line.calls
	line.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // 20 periods
	line.mu.Lock()
	defer line.mu.Unlock()
	// A pulse whose edge came before Close took the PIT's lock may still
	// run before Close returns (on a loaded host the next 1 ms edge can
	// beat the goroutine that calls Close); none may come after it.
	if line.calls != n || n < 2 || n%2 != 0 {
		t.Errorf("SetLevel calls: %d by Close, %d 20 ms later; want whole pulses (2 calls each) by Close, then none", n, line.calls)
	}
}

// TestPITStateCarriesOn takes a PIT's state mid-count in each mode and
// restores it on a clock with another epoch: from then on both PITs read
// the same counts and raise the same interrupts.
func TestPITStateCarriesOn(t *testing.T) {
	tests := []struct {
		name  string
		setup func(a *pitAt)
	}{
		{"mode 2 at 1 kHz, latched", func(a *pitAt) {
			regWrite(a.p, PITControl, 0x34)
			regWrite(a.p, 0, 0xA9)
			a.out(0, 0x04)
			a.clock.advance(3*time.Millisecond + 123*time.Microsecond)
			regWrite(a.p, PITControl, 0x00) // a latch the restored PIT must still hold
		}},
		{"mode 0 counting, counter 2 gated off", func(a *pitAt) {
			regWrite(a.p, PITControl, 0x30)
			regWrite(a.p, 0, 0x00)
			a.out(0, 0x40) // 16384 clocks, 13.7 ms
			regWrite(a.p, PITPort61Offset, Port61Gate2)
			regWrite(a.p, PITControl, 0xB0)
			regWrite(a.p, 2, 0x00)
			a.out(2, 0x10)
			a.clk(1000)
			regWrite(a.p, PITPort61Offset, 0) // held at 0x1000 - 999
		}},
		{"mode 3 with a count waiting for the reload", func(a *pitAt) {
			regWrite(a.p, PITControl, 0x36)
			regWrite(a.p, 0, 0x9C)
			a.out(0, 0x2E) // 11932: 100 Hz
			a.clock.advance(25 * time.Millisecond)
			regWrite(a.p, 0, 0xA9)
			regWrite(a.p, 0, 0x04) // 1193 from the next reload
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newPITAt(t)
			tt.setup(a)
			s := a.p.State()
			c := newPITClock()
			c.advance(17 * time.Hour) // another epoch and another time of day
			irq := &pulseCounter{}
			b := RestorePIT(s, irq, c)
			if got := b.State(); got != s {
				t.Fatalf("State of the restored PIT = %+v, want %+v", got, s)
			}
			edgesA := a.irq.count()
			for step := 0; step < 40; step++ {
				d := time.Duration(step*step+1) * 97 * time.Microsecond
				a.clock.advance(d)
				c.advance(d)
				for _, off := range []uint64{0, 2, PITPort61Offset} {
					if off == PITPort61Offset {
						va, vb := regRead(a.p, off)&^Port61Refresh, regRead(b, off)&^Port61Refresh
						if va != vb {
							t.Fatalf("step %d: port 0x61 = %#x, restored %#x", step, va, vb)
						}
						continue
					}
					if va, vb := regRead(a.p, off), regRead(b, off); va != vb {
						t.Fatalf("step %d: counter %d reads %#x, restored %#x", step, off, va, vb)
					}
				}
			}
			if ea, eb := a.irq.count()-edgesA, irq.count(); ea != eb || ea == 0 && tt.name != "mode 0 counting, counter 2 gated off" {
				t.Errorf("IRQ 0 edges after the snapshot: %d, restored %d; want equal and some", ea, eb)
			}
		})
	}
}
