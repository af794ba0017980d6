package devices

import "time"

// The PIT's state for snapshots and pauses: time kept as clock pulses,
// so that a restored PIT goes on from where it was on any clock.

// PITChannelState is one counter's state, with time as clock pulses: how
// many have passed since its count was written, so that a restored PIT
// goes on from where this one was, whatever the clocks.
type PITChannelState struct {
	Control      byte   // bits 5:0 of the last control word: RW, mode, BCD
	Count        uint64 // N in use (1-65536; 1-10000 in BCD)
	Loaded       bool   // a count was written since the control word
	Elapsed      uint64 // pulses since the count's write (or the gate's edge)
	Frozen       bool   // the gate is low (or mode 0's first byte came): Elapsed holds
	Gate         bool
	Pending      bool   // modes 2, 3: a new count waits for the reload
	PendingCount uint64 //
	PendingIn    uint64 // pulses from now to the write tick of the pending count
	WriteMSB     bool   // the next data write is the MSB
	LSB          byte   // the LSB written before it
	ReadMSB      bool   // the next unlatched read is the MSB
	Latched      int    // bytes of LatchedValue still to read
	LatchedValue uint16
	StatusLatch  bool // a read-back status waits to be read
	Status       byte
	Fired        bool // mode 0: the terminal count's interrupt was raised
}

// PITState is the PIT's state for snapshots.
type PITState struct {
	Channels [3]PITChannelState
	Port61   byte
	// Phase is how far into the current clock pulse the state was taken
	// (under 838 ns), so that the restored PIT's pulses fall in step.
	Phase time.Duration
}

// State returns the PIT's state now.
func (p *PIT) State() PITState {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.clock.Now()
	now := p.tick(t)
	s := PITState{Port61: p.port61, Phase: t.Sub(p.timeOf(now))}
	for i := range p.ch {
		c := &p.ch[i]
		d := c.elapsed(now) // applies a pending count that is due
		if !c.loaded {
			d = 0 // no count to be in
		}
		cs := PITChannelState{
			Control: c.ctrl, Count: c.n, Loaded: c.loaded, Elapsed: d, Frozen: c.frozen, Gate: c.gate,
			Pending: c.pending, PendingCount: c.pendN,
			WriteMSB: c.writeMSB, LSB: c.lsb, ReadMSB: c.readMSB, Latched: c.latched, LatchedValue: c.latchedVal,
			StatusLatch: c.statusOK, Status: c.status, Fired: c.fired,
		}
		if c.pending && c.pendStart > now {
			cs.PendingIn = c.pendStart - now
		}
		s.Channels[i] = cs
	}
	return s
}

// RestorePIT returns a PIT in state s, counting on clock from now and
// raising IRQ 0 on irq.
func RestorePIT(s PITState, irq IRQLine, clock Clock) *PIT {
	p := NewPIT(irq, clock)
	p.Restore(s)
	return p
}

// Restore puts the PIT in state s (from State or Freeze), counting on its
// clock from now: the time since s was taken does not pass for the guest.
// A frozen PIT goes on.
func (p *PIT) Restore(s PITState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = false
	p.epoch = p.clock.Now()
	// Put the epoch far enough back that every counter's start is a tick
	// after it: start = now - Elapsed.
	var back uint64
	for _, cs := range s.Channels {
		back = max(back, cs.Elapsed)
	}
	phase := min(max(s.Phase, 0), time.Second/PITHz)
	p.epoch = p.epoch.Add(-phase - p.timeOf(back+1).Sub(p.epoch)) // now is tick back+1, phase into it
	now := p.tick(p.clock.Now())
	p.port61 = s.Port61 & port61Writable
	for i, cs := range s.Channels {
		c := pitChannel{
			ctrl: cs.Control & 0x3F, n: cs.Count, loaded: cs.Loaded, frozen: cs.Frozen, d: cs.Elapsed, gate: cs.Gate,
			pending: cs.Pending, pendN: cs.PendingCount, pendStart: now + cs.PendingIn,
			writeMSB: cs.WriteMSB, lsb: cs.LSB, readMSB: cs.ReadMSB, latched: min(max(cs.Latched, 0), 2), latchedVal: cs.LatchedValue,
			statusOK: cs.StatusLatch, status: cs.Status, fired: cs.Fired,
		}
		if c.n == 0 || c.n > 65536 {
			c.loaded = false // a count no 8254 holds: as after a control word
		}
		if !c.frozen {
			c.start = now - min(cs.Elapsed, now)
		}
		p.ch[i] = c
	}
	p.ch[0].gate, p.ch[1].gate = true, true // tied high on a PC
	p.rearmLocked(now)
}

// Freeze stops the PIT for a pause and returns its state: it raises no
// interrupt from the moment Freeze returns until Restore is given the
// state back, and its counts stand still meanwhile.
func (p *PIT) Freeze() PITState {
	s := p.State()
	p.mu.Lock()
	p.frozen = true
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	// As in Close: a pulse that began before is over once pulseMu is free.
	p.pulseMu.Lock()
	p.pulseMu.Unlock() //lint:ignore SA2001 an empty critical section: waiting for the pulse is the point
	return s
}
