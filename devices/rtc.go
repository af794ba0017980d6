package devices

// An MC146818 real-time clock and its 128 bytes of CMOS RAM.
//
// Two ports (offsets from 0x70): offset 0 selects a register (bits 6:0) and
// masks NMIs (bit 7, stored but without effect here); offset 1 reads or
// writes the selected register.
//
//	reg   contents
//	0x00  seconds            0x01  seconds alarm
//	0x02  minutes            0x03  minutes alarm
//	0x04  hours              0x05  hours alarm
//	0x06  day of week (1 = Sunday)
//	0x07  day of month       0x08  month            0x09  year (00-99)
//	0x0a  register A: UIP (update in progress), divider, rate
//	0x0b  register B: SET, interrupt enables, DM (binary), 24/12, DSE
//	0x0c  register C: interrupt flags (read-only; always 0 here)
//	0x0d  register D: VRT, valid RAM and time (read-only; always set)
//	0x0e-0x7f  CMOS RAM; by PC convention 0x32 is the century, 0x34-0x35
//	      memory above 16 MiB and 0x5b-0x5d memory above 4 GiB, in 64 KiB
//	      units (see RTCMemory)
//
// The time registers show the injected clock plus an offset that the guest
// changes by writing them; they are BCD unless register B's DM bit is set,
// and hours are 12-hour with bit 7 for PM unless its 24/12 bit is set.
// While register B's SET bit is on, the guest writes a frozen copy; clearing
// it starts the clock from that copy. UIP reads as set during the last
// 244 us of each second, as a real part raises it before each update.
// Alarms, periodic and update interrupts are not emulated.

import (
	"sync"
	"time"
)

// Register numbers.
const (
	RTCSeconds    = 0x00
	RTCMinutes    = 0x02
	RTCHours      = 0x04
	RTCDayOfWeek  = 0x06
	RTCDayOfMonth = 0x07
	RTCMonth      = 0x08
	RTCYear       = 0x09
	RTCRegA       = 0x0a
	RTCRegB       = 0x0b
	RTCRegC       = 0x0c
	RTCRegD       = 0x0d
	RTCCentury    = 0x32
	RTCMem16M     = 0x34 // 2 bytes, little endian: RAM above 16 MiB / 64 KiB
	RTCMem4G      = 0x5b // 3 bytes, little endian: RAM above 4 GiB / 64 KiB
	rtcRAMSize    = 128
	rtcIndexMask  = 0x7f
	rtcNMIDisable = 0x80
)

// Offsets of the two ports.
const (
	RTCIndexOffset = 0
	RTCDataOffset  = 1
)

// Register bits.
const (
	RTCAUpdating = 1 << 7 // UIP
	RTCADivider  = 0x70   // DV2-0; 010 is the 32.768 kHz time base
	RTCARate     = 0x0f   // RS3-0: periodic interrupt rate
	RTCBSet      = 1 << 7 // SET: updates stop, time may be written
	RTCBPIE      = 1 << 6 // periodic interrupt enable
	RTCBAIE      = 1 << 5 // alarm interrupt enable
	RTCBUIE      = 1 << 4 // update-ended interrupt enable
	RTCBSQWE     = 1 << 3 // square-wave enable
	RTCBBinary   = 1 << 2 // DM: binary rather than BCD
	RTCB24Hour   = 1 << 1 // 24-hour mode
	RTCBDST      = 1 << 0 // daylight saving enable
	RTCDValid    = 1 << 7 // VRT
	rtcHourPM    = 1 << 7 // bit 7 of the hours register in 12-hour mode
	rtcUIPWindow = 244 * time.Microsecond
)

// RTC is the CMOS clock. It is safe for concurrent use.
type RTC struct {
	mu  sync.Mutex
	now func() time.Time
	st  RTCState
}

// RTCState is the guest-visible state of an RTC.
type RTCState struct {
	Index byte // selected register, NMI-disable bit included
	// RAM holds registers A and B, the alarms and CMOS RAM. The time
	// registers are kept here only while register B's SET bit is on.
	RAM [rtcRAMSize]byte
	// Offset is guest time minus host clock. Restored on another host, the
	// guest clock keeps the same distance from that host's real time.
	Offset time.Duration
}

// RTCOption configures NewRTC.
type RTCOption func(*RTC)

// RTCMemory records the guest's RAM size in CMOS for firmware that reads it:
// below4G is where RAM below 4 GiB ends, above4G how much lies above 4 GiB.
func RTCMemory(below4G, above4G uint64) RTCOption {
	return func(r *RTC) {
		const unit = 64 << 10
		var mid uint64
		if below4G > 16<<20 {
			mid = min((below4G-16<<20)/unit, 0xffff)
		}
		high := min(above4G/unit, 0xffffff)
		r.st.RAM[RTCMem16M] = byte(mid)
		r.st.RAM[RTCMem16M+1] = byte(mid >> 8)
		r.st.RAM[RTCMem4G] = byte(high)
		r.st.RAM[RTCMem4G+1] = byte(high >> 8)
		r.st.RAM[RTCMem4G+2] = byte(high >> 16)
	}
}

// NewRTC returns a clock that reads now (time.Now in production) and starts
// in BCD, 24-hour mode with the guest time equal to now's, in UTC.
func NewRTC(now func() time.Time, opts ...RTCOption) *RTC {
	r := &RTC{now: now}
	r.st.RAM[RTCRegA] = 0x20 // 32.768 kHz time base, no periodic rate
	r.st.RAM[RTCRegB] = RTCB24Hour
	for _, o := range opts {
		o(r)
	}
	return r
}

// RestoreRTC rebuilds a clock from st, reading time from now.
func RestoreRTC(st RTCState, now func() time.Time) *RTC {
	return &RTC{now: now, st: st}
}

// Restore puts the clock in state st: its guest time goes on at st's
// distance from this host's clock.
func (r *RTC) Restore(st RTCState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = st
}

// State returns the clock's state.
func (r *RTC) State() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Read handles a guest read of the index or data port.
func (r *RTC) Read(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	clear(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch off {
	case RTCIndexOffset:
		p[0] = r.st.Index
	case RTCDataOffset:
		p[0] = r.readReg(r.st.Index & rtcIndexMask)
	default:
		p[0] = 0xff
	}
}

// Write handles a guest write to the index or data port.
func (r *RTC) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch off {
	case RTCIndexOffset:
		r.st.Index = p[0]
	case RTCDataOffset:
		r.writeReg(r.st.Index&rtcIndexMask, p[0])
	}
}

// rtcTimeRegs are the registers that show the time, in the order they are
// decoded when the guest restarts the clock.
var rtcTimeRegs = [...]byte{RTCCentury, RTCYear, RTCMonth, RTCDayOfMonth, RTCHours, RTCMinutes, RTCSeconds, RTCDayOfWeek}

func isRTCTimeReg(reg byte) bool {
	for _, t := range rtcTimeRegs {
		if reg == t {
			return true
		}
	}
	return false
}

// frozen reports whether register B's SET bit stops the clock.
func (r *RTC) frozen() bool { return r.st.RAM[RTCRegB]&RTCBSet != 0 }

// guestTime is the time the guest sees now, while the clock runs.
func (r *RTC) guestTime() time.Time { return r.now().Add(r.st.Offset).UTC() }

func (r *RTC) readReg(reg byte) byte {
	switch {
	case isRTCTimeReg(reg) && !r.frozen():
		return r.encode(reg, r.guestTime())
	case reg == RTCRegA:
		v := r.st.RAM[RTCRegA] &^ RTCAUpdating
		if !r.frozen() && time.Second-time.Duration(r.guestTime().Nanosecond()) <= rtcUIPWindow {
			v |= RTCAUpdating
		}
		return v
	case reg == RTCRegC:
		return 0
	case reg == RTCRegD:
		return RTCDValid
	}
	return r.st.RAM[reg]
}

func (r *RTC) writeReg(reg byte, v byte) {
	switch {
	case isRTCTimeReg(reg) && !r.frozen():
		r.st.Offset = r.decode(reg, v, r.guestTime()).Sub(r.now())
	case reg == RTCRegA:
		r.st.RAM[RTCRegA] = v &^ RTCAUpdating
	case reg == RTCRegB:
		set, was := v&RTCBSet != 0, r.frozen()
		if set && !was {
			// Stop the clock: the guest edits a copy of the time registers.
			t := r.guestTime()
			for _, reg := range rtcTimeRegs {
				r.st.RAM[reg] = r.encode(reg, t)
			}
		}
		r.st.RAM[RTCRegB] = v
		if !set && was {
			r.restart()
		}
	case reg == RTCRegC, reg == RTCRegD:
		// read-only
	default:
		r.st.RAM[reg] = v
	}
}

// restart starts the clock from the time registers the guest wrote while
// SET was on, decoded in the format register B now says; the written second
// begins now.
func (r *RTC) restart() {
	ram := &r.st.RAM
	t := time.Date(
		r.field(RTCCentury, ram[RTCCentury])*100+r.field(RTCYear, ram[RTCYear]),
		time.Month(r.field(RTCMonth, ram[RTCMonth])), r.field(RTCDayOfMonth, ram[RTCDayOfMonth]),
		r.field(RTCHours, ram[RTCHours]), r.field(RTCMinutes, ram[RTCMinutes]),
		r.field(RTCSeconds, ram[RTCSeconds]), 0, time.UTC)
	r.st.Offset = t.Sub(r.now())
	for _, reg := range rtcTimeRegs {
		ram[reg] = 0
	}
}

// encode returns register reg of t in the current format.
func (r *RTC) encode(reg byte, t time.Time) byte {
	var n int
	switch reg {
	case RTCSeconds:
		n = t.Second()
	case RTCMinutes:
		n = t.Minute()
	case RTCHours:
		n = t.Hour()
		if r.st.RAM[RTCRegB]&RTCB24Hour == 0 {
			pm := n >= 12
			n %= 12
			if n == 0 {
				n = 12
			}
			v := r.toReg(n)
			if pm {
				v |= rtcHourPM
			}
			return v
		}
	case RTCDayOfWeek:
		n = int(t.Weekday()) + 1
	case RTCDayOfMonth:
		n = t.Day()
	case RTCMonth:
		n = int(t.Month())
	case RTCYear:
		n = t.Year() % 100
	case RTCCentury:
		n = t.Year() / 100
	}
	return r.toReg(n)
}

// field decodes the value v of time register reg; hours come back 0-23.
func (r *RTC) field(reg, v byte) int {
	if reg != RTCHours || r.st.RAM[RTCRegB]&RTCB24Hour != 0 {
		return r.fromReg(v)
	}
	h := r.fromReg(v&^rtcHourPM) % 12
	if v&rtcHourPM != 0 {
		h += 12
	}
	return h
}

// decode returns t with the field of register reg set to the value the
// guest wrote. Out-of-range values carry over, as time.Date normalizes.
func (r *RTC) decode(reg, v byte, t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	n := r.field(reg, v)
	switch reg {
	case RTCSeconds:
		s = n
	case RTCMinutes:
		mi = n
	case RTCHours:
		h = n
	case RTCDayOfWeek:
		return t // follows from the date
	case RTCDayOfMonth:
		d = n
	case RTCMonth:
		mo = time.Month(n)
	case RTCYear:
		y = y/100*100 + n
	case RTCCentury:
		y = n*100 + y%100
	}
	return time.Date(y, mo, d, h, mi, s, t.Nanosecond(), time.UTC)
}

func (r *RTC) toReg(n int) byte {
	if r.st.RAM[RTCRegB]&RTCBBinary != 0 {
		return byte(n)
	}
	return byte(n/10<<4 | n%10)
}

func (r *RTC) fromReg(v byte) int {
	if r.st.RAM[RTCRegB]&RTCBBinary != 0 {
		return int(v)
	}
	return int(v>>4)*10 + int(v&0x0f)
}
