package devices

import (
	"testing"
	"time"
)

// maxPITFuzzOps bounds one input, so that each run stays short.
const maxPITFuzzOps = 128

// pitPorts are the offsets the PIT is registered at: 0x40-0x43, 0x61.
var pitPorts = []uint64{0, 1, 2, PITControl, PITPort61Offset}

// FuzzPITPorts drives the PIT with any port accesses, each followed by a
// wait of up to 255 clocks or (bit 7 of its fourth byte) 255 periods of
// PITMinPeriod. After each, what the 8254 guarantees whatever the guest
// writes: no panic; IRQ 0 is a pulse, left low; no more than one edge
// per PITMinPeriod of time passed; in modes 2 and 3 the counting element
// stays within 1..N (2..N for an even N in mode 3); the status byte
// repeats the control word.
func FuzzPITPorts(f *testing.F) {
	f.Add([]byte{3, 0x34, 1, 0, 0, 0xa9, 1, 5, 0, 0x04, 1, 0x80}) // Linux's periodic tick: mode 2, 1193
	f.Add([]byte{4, 0x01, 1, 0, 3, 0xb0, 1, 0, 2, 0xff, 1, 0, 2, 0xff, 1, 10, 4, 0, 0, 3, 2, 0, 0, 0})
	f.Add([]byte{3, 0x36, 1, 0, 0, 0x05, 1, 0, 0, 0, 1, 0, 3, 0xc2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{3, 0x31, 1, 0, 0, 0x99, 1, 0, 0, 0x99, 1, 40, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := newPITClock()
		irq := &pulseCounter{}
		p := NewPIT(irq, clock)
		start := clock.Now()
		var ctrl [3]byte
		for i := 0; i+3 < len(ops) && i < 4*maxPITFuzzOps; i += 4 {
			off := pitPorts[int(ops[i])%len(pitPorts)]
			v, write, wait := ops[i+1], ops[i+2]&1 == 1, ops[i+3]
			if write {
				regWrite(p, off, v)
				if off == PITControl && v>>6 != 3 && v>>4&3 != 0 {
					ctrl[v>>6] = v & 0x3F
				}
			} else {
				regRead(p, off)
			}
			d := time.Duration(wait&0x7F) * time.Second / PITHz
			if wait&0x80 != 0 {
				d = time.Duration(wait&0x7F) * PITMinPeriod
			}
			clock.advance(d)

			irq.mu.Lock()
			high, edges := irq.high, irq.edges
			irq.mu.Unlock()
			if high {
				t.Fatalf("IRQ 0 left high after op %d", i/4)
			}
			if max := int(clock.Now().Sub(start)/PITMinPeriod) + 1; edges > max {
				t.Fatalf("%d IRQ 0 edges in %v, more than one per %v", edges, clock.Now().Sub(start), PITMinPeriod)
			}
			p.mu.Lock()
			now := p.tick(clock.Now())
			for ch := range p.ch {
				c := &p.ch[ch]
				if c.ctrl != ctrl[ch] {
					p.mu.Unlock()
					t.Fatalf("counter %d control bits %#x, want %#x as written", ch, c.ctrl, ctrl[ch])
				}
				m := c.mode()
				if !c.loaded || (m != 2 && m != 3) {
					continue
				}
				cnt, _ := c.countAndOut(now)
				low := uint64(1)
				if m == 3 && c.n%2 == 0 {
					low = 2
				}
				if cnt < low || cnt > c.n {
					p.mu.Unlock()
					t.Fatalf("counter %d in mode %d with N %d counts %d, want %d..N", ch, m, c.n, cnt, low)
				}
				if st := c.statusByte(now); st&0x3F != ctrl[ch] {
					p.mu.Unlock()
					t.Fatalf("counter %d status %#x, want control bits %#x", ch, st, ctrl[ch])
				}
			}
			p.mu.Unlock()
		}
		p.Close()
	})
}
