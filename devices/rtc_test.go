package devices

import (
	"testing"
	"time"
)

// fakeClock is a settable clock for the RTC.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func rtcRead(r *RTC, reg byte) byte {
	regWrite(r, RTCIndexOffset, reg)
	return regRead(r, RTCDataOffset)
}

func rtcWrite(r *RTC, reg, v byte) {
	regWrite(r, RTCIndexOffset, reg)
	regWrite(r, RTCDataOffset, v)
}

// 2024-02-29 15:04:05.5 UTC, a Thursday.
var rtcTestTime = time.Date(2024, 2, 29, 15, 4, 5, 5e8, time.UTC)

func TestRTCTime(t *testing.T) {
	tests := []struct {
		name string
		regB byte
		want map[byte]byte
	}{
		{"BCD 24h", RTCB24Hour, map[byte]byte{
			RTCSeconds: 0x05, RTCMinutes: 0x04, RTCHours: 0x15, RTCDayOfWeek: 5,
			RTCDayOfMonth: 0x29, RTCMonth: 0x02, RTCYear: 0x24, RTCCentury: 0x20,
		}},
		{"binary 24h", RTCB24Hour | RTCBBinary, map[byte]byte{
			RTCSeconds: 5, RTCMinutes: 4, RTCHours: 15, RTCDayOfWeek: 5,
			RTCDayOfMonth: 29, RTCMonth: 2, RTCYear: 24, RTCCentury: 20,
		}},
		{"BCD 12h", 0, map[byte]byte{RTCHours: 0x80 | 0x03}},
		{"binary 12h", RTCBBinary, map[byte]byte{RTCHours: 0x80 | 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{rtcTestTime}
			r := NewRTC(c.now)
			rtcWrite(r, RTCRegB, tt.regB)
			for reg, want := range tt.want {
				if got := rtcRead(r, reg); got != want {
					t.Errorf("register %#02x = %#02x, want %#02x", reg, got, want)
				}
			}
		})
	}
}

func TestRTC12HourMidnightAndNoon(t *testing.T) {
	tests := []struct {
		hour int
		want byte
	}{{0, 0x12}, {11, 0x11}, {12, 0x80 | 0x12}, {23, 0x80 | 0x11}}
	for _, tt := range tests {
		c := &fakeClock{time.Date(2024, 1, 1, tt.hour, 0, 0, 0, time.UTC)}
		r := NewRTC(c.now)
		rtcWrite(r, RTCRegB, 0)
		if got := rtcRead(r, RTCHours); got != tt.want {
			t.Errorf("hours register at %d:00 in 12h BCD = %#02x, want %#02x", tt.hour, got, tt.want)
		}
	}
}

func TestRTCTicks(t *testing.T) {
	c := &fakeClock{rtcTestTime}
	r := NewRTC(c.now)
	c.t = c.t.Add(2 * time.Second)
	if got := rtcRead(r, RTCSeconds); got != 0x07 {
		t.Errorf("seconds after 2s = %#02x, want 0x07", got)
	}
}

func TestRTCSetTime(t *testing.T) {
	c := &fakeClock{rtcTestTime}
	r := NewRTC(c.now)
	// What Linux does: SET, write the fields, clear SET.
	rtcWrite(r, RTCRegB, RTCB24Hour|RTCBSet)
	for _, w := range [][2]byte{
		{RTCSeconds, 0x30}, {RTCMinutes, 0x59}, {RTCHours, 0x23},
		{RTCDayOfMonth, 0x31}, {RTCMonth, 0x12}, {RTCYear, 0x99}, {RTCCentury, 0x19},
	} {
		rtcWrite(r, w[0], w[1])
	}
	c.t = c.t.Add(time.Hour) // the clock stands still while SET is on
	if got := rtcRead(r, RTCSeconds); got != 0x30 {
		t.Errorf("seconds while SET = %#02x, want 0x30", got)
	}
	rtcWrite(r, RTCRegB, RTCB24Hour)
	c.t = c.t.Add(30 * time.Second)
	want := map[byte]byte{RTCSeconds: 0x00, RTCMinutes: 0x00, RTCHours: 0x00, RTCDayOfMonth: 0x01, RTCMonth: 0x01, RTCYear: 0x00, RTCCentury: 0x20}
	for reg, w := range want {
		if got := rtcRead(r, reg); got != w {
			t.Errorf("register %#02x 30s after 1999-12-31 23:59:30 = %#02x, want %#02x", reg, got, w)
		}
	}
	// A write without SET takes effect at once.
	rtcWrite(r, RTCMinutes, 0x10)
	if got := rtcRead(r, RTCMinutes); got != 0x10 {
		t.Errorf("minutes after direct write = %#02x, want 0x10", got)
	}
}

func TestRTCRegisters(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		reg  byte
		want byte
	}{
		{"A mid-second", rtcTestTime, RTCRegA, 0x20},
		{"A just before the update", rtcTestTime.Add(5e8 - 100*time.Microsecond), RTCRegA, 0x20 | RTCAUpdating},
		{"A at the update", rtcTestTime.Add(5e8), RTCRegA, 0x20},
		{"B", rtcTestTime, RTCRegB, RTCB24Hour},
		{"C", rtcTestTime, RTCRegC, 0},
		{"D", rtcTestTime, RTCRegD, RTCDValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{tt.now}
			r := NewRTC(c.now)
			if got := rtcRead(r, tt.reg); got != tt.want {
				t.Errorf("register %#02x = %#02x, want %#02x", tt.reg, got, tt.want)
			}
		})
	}
}

func TestRTCRAMAndIndex(t *testing.T) {
	c := &fakeClock{rtcTestTime}
	r := NewRTC(c.now)
	rtcWrite(r, 0x40, 0xab)
	regWrite(r, RTCIndexOffset, rtcNMIDisable|0x40) // the NMI bit is not part of the index
	if got := regRead(r, RTCDataOffset); got != 0xab {
		t.Errorf("CMOS[0x40] via index 0xc0 = %#02x, want 0xab", got)
	}
	if got := regRead(r, RTCIndexOffset); got != rtcNMIDisable|0x40 {
		t.Errorf("Read(index) = %#02x, want 0xc0", got)
	}
	rtcWrite(r, RTCRegD, 0)
	rtcWrite(r, RTCRegC, 0xff)
	if got := rtcRead(r, RTCRegD); got != RTCDValid {
		t.Errorf("register D after write = %#02x, want %#02x (read-only)", got, RTCDValid)
	}
	if got := rtcRead(r, RTCRegC); got != 0 {
		t.Errorf("register C after write = %#02x, want 0 (read-only)", got)
	}
}

func TestRTCMemory(t *testing.T) {
	tests := []struct {
		name            string
		below, above    uint64
		want16M, want4G uint32
	}{
		{"512 MiB", 512 << 20, 0, (512 - 16) << 4, 0},
		{"8 MiB", 8 << 20, 0, 0, 0},
		{"3 GiB + 5 GiB", 3 << 30, 5 << 30, (3<<10 - 16) << 4, 5 << 14},
		{"huge", 1 << 40, 1 << 50, 0xffff, 0xffffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRTC(time.Now, RTCMemory(tt.below, tt.above))
			got16M := uint32(rtcRead(r, RTCMem16M)) | uint32(rtcRead(r, RTCMem16M+1))<<8
			got4G := uint32(rtcRead(r, RTCMem4G)) | uint32(rtcRead(r, RTCMem4G+1))<<8 | uint32(rtcRead(r, RTCMem4G+2))<<16
			if got16M != tt.want16M || got4G != tt.want4G {
				t.Errorf("RTCMemory(%#x, %#x) = 16M:%#x 4G:%#x, want 16M:%#x 4G:%#x", tt.below, tt.above, got16M, got4G, tt.want16M, tt.want4G)
			}
		})
	}
}

func TestRTCStateRoundTrip(t *testing.T) {
	c := &fakeClock{rtcTestTime}
	r := NewRTC(c.now)
	rtcWrite(r, RTCYear, 0x30) // guest runs six years ahead
	rtcWrite(r, 0x50, 0x77)
	rtcWrite(r, RTCRegB, RTCB24Hour|RTCBSet) // mid-update
	rtcWrite(r, RTCMinutes, 0x45)
	st := r.State()

	c2 := &fakeClock{rtcTestTime.Add(time.Minute)}
	r2 := RestoreRTC(st, c2.now)
	if got := r2.State(); got != st {
		t.Errorf("RestoreRTC(st).State() = %+v, want %+v", got, st)
	}
	if got := rtcRead(r2, RTCMinutes); got != 0x45 {
		t.Errorf("frozen minutes after restore = %#02x, want 0x45", got)
	}
	rtcWrite(r2, RTCRegB, RTCB24Hour)
	want := map[byte]byte{RTCYear: 0x30, RTCMinutes: 0x45, 0x50: 0x77}
	for reg, w := range want {
		if got := rtcRead(r2, reg); got != w {
			t.Errorf("register %#02x after restore = %#02x, want %#02x", reg, got, w)
		}
	}
}

// rtcView is the time registers in rtcTimeRegs order, as the guest reads
// them.
type rtcView [len(rtcTimeRegs)]byte

// rtcFields is a time as the MC146818 data sheet's registers carry it.
type rtcFields struct {
	century, year, month, day, hour, minute, second, weekday int
}

// rtcDecode decodes the time registers per the data sheet, in the format
// register b gives: BCD unless DM (binary), 12-hour with bit 7 for PM
// unless 24/12. ok is false when a register holds a value the format
// cannot (a BCD digit above 9, an hour outside 1-12 in 12-hour mode).
func rtcDecode(v rtcView, b byte) (f rtcFields, ok bool) {
	ok = true
	dec := func(x byte) int {
		if b&RTCBBinary != 0 {
			return int(x)
		}
		if x>>4 > 9 || x&0x0f > 9 {
			ok = false
		}
		return int(x>>4)*10 + int(x&0x0f)
	}
	for i, reg := range rtcTimeRegs {
		x := v[i]
		switch reg {
		case RTCCentury:
			f.century = dec(x)
		case RTCYear:
			f.year = dec(x)
		case RTCMonth:
			f.month = dec(x)
		case RTCDayOfMonth:
			f.day = dec(x)
		case RTCHours:
			if b&RTCB24Hour != 0 {
				f.hour = dec(x)
				break
			}
			h := dec(x &^ rtcHourPM)
			if h < 1 || h > 12 {
				ok = false
			}
			f.hour = h % 12
			if x&rtcHourPM != 0 {
				f.hour += 12
			}
		case RTCMinutes:
			f.minute = dec(x)
		case RTCSeconds:
			f.second = dec(x)
		case RTCDayOfWeek:
			f.weekday = dec(x)
		}
	}
	return f, ok
}

// rtcFieldsOf is t as the registers should show it (weekday 1 = Sunday).
func rtcFieldsOf(t time.Time) rtcFields {
	return rtcFields{
		century: t.Year() / 100, year: t.Year() % 100, month: int(t.Month()), day: t.Day(),
		hour: t.Hour(), minute: t.Minute(), second: t.Second(), weekday: int(t.Weekday()) + 1,
	}
}

// time is f as a time, if f names a real date and time that a running
// clock can count from (years 0-9999; the weekday is not part of it).
func (f rtcFields) time() (time.Time, bool) {
	if f.century > 99 || f.year > 99 || f.month < 1 || f.month > 12 || f.day < 1 || f.hour > 23 || f.minute > 59 || f.second > 59 {
		return time.Time{}, false
	}
	t := time.Date(f.century*100+f.year, time.Month(f.month), f.day, f.hour, f.minute, f.second, 0, time.UTC)
	if t.Day() != f.day { // February 30th and the like roll over
		return time.Time{}, false
	}
	return t, true
}

// rtcPeek reads register reg through the ports and puts the index back.
func rtcPeek(r *RTC, reg byte) byte {
	idx := regRead(r, RTCIndexOffset)
	v := rtcRead(r, reg)
	regWrite(r, RTCIndexOffset, idx)
	return v
}

func rtcPeekTime(r *RTC) rtcView {
	var v rtcView
	for i, reg := range rtcTimeRegs {
		v[i] = rtcPeek(r, reg)
	}
	return v
}

// isRTCRAM says whether reg is plain storage: the alarms and CMOS RAM
// other than the century byte, which the clock owns.
func isRTCRAM(reg byte) bool {
	switch reg {
	case 0x01, 0x03, 0x05:
		return true
	}
	return reg > RTCRegD && reg != RTCCentury
}

// FuzzRTC drives the CMOS RTC with any accesses, in pairs of bytes (op,
// value): index and data writes, reads, the host clock moving on, and a
// State/RestoreRTC round trip; start places the clock within its second.
// After each op the clock is held to the MC146818 data sheet:
//
//   - while it runs, its time registers, decoded in the format register B
//     gives (BCD or binary, 12 or 24 hours), show the device's clock (the
//     host clock plus State's Offset), the weekday following the date;
//   - while SET is on they show what was last written (or the time SET
//     was set at), the host clock moving changes nothing, and UIP is 0;
//   - clearing SET with a valid time written starts the clock from it;
//   - UIP is 0 only if the time registers hold still for the next 244 us,
//     and 1 only if they change within it (checked on a restored copy
//     with the host clock moved on);
//   - register A keeps its low 7 bits and register B all 8; register C
//     has no low bits and its IRQF bit equals (PF and PIE) or (AF and
//     AIE) or (UF and UIE); register D reads VRT alone;
//   - the index reads back as written, alarms and CMOS RAM hold what was
//     written, and nothing panics.
func FuzzRTC(f *testing.F) {
	const (
		opIndex = iota
		opData
		opReadData
		opReadIndex
		opAdvance // by value << (op>>3 & 31) ns
		opRestore
		opKinds
	)
	const rtcStart = 999_000_000 // start at :59.999, near a rollover
	seed := func(start uint32, ops ...byte) { f.Add(start, ops) }
	// Linux's set sequence: SET, the fields, SET off.
	seed(0, opIndex, RTCRegB, opData, RTCB24Hour|RTCBSet, opIndex, RTCSeconds, opData, 0x30, opIndex, RTCMinutes, opData, 0x59,
		opIndex, RTCHours, opData, 0x23, opIndex, RTCDayOfMonth, opData, 0x31, opIndex, RTCMonth, opData, 0x12,
		opIndex, RTCYear, opData, 0x99, opIndex, RTCCentury, opData, 0x19, opAdvance|20<<3, 200,
		opIndex, RTCRegB, opData, RTCB24Hour, opAdvance|24<<3, 2, opReadData, 0)
	// Binary, 12-hour, with a restore while SET is on.
	seed(rtcStart, opIndex, RTCRegB, opData, RTCBBinary|RTCBSet, opIndex, RTCHours, opData, 0x80|11, opRestore, 0,
		opIndex, RTCRegB, opData, RTCBBinary, opReadData, 0)
	// The update window: UIP before and after the second's end.
	seed(999_800_000, opIndex, RTCRegA, opReadData, 0, opAdvance|10<<3, 250, opReadData, 0)
	seed(999_730_000, opIndex, RTCRegA, opReadData, 0, opAdvance|10<<3, 40, opReadData, 0)           // 270 us before: UIP still 0
	seed(999_800_000, opIndex, RTCRegB, opData, RTCB24Hour|RTCBSet, opIndex, RTCRegA, opReadData, 0) // SET clears UIP
	// Direct writes while running, nonsense BCD, a mode switch.
	seed(rtcStart, opIndex, RTCYear, opData, 0x9a, opIndex, RTCRegB, opData, 0, opIndex, RTCHours, opData, 0x12, opReadIndex, 0)
	// RAM, register A's rate, register C and D, the NMI bit.
	seed(0, opIndex, 0x40, opData, 0xab, opIndex, RTCRegA, opData, 0xa6, opIndex, RTCRegC, opData, 0xff,
		opIndex, 0x80|0x41, opData, 0x12, opReadIndex, 0)
	f.Fuzz(func(t *testing.T, start uint32, ops []byte) {
		clock := &fakeClock{time.Date(2024, 2, 29, 23, 59, 59, int(start%1e9), time.UTC)}
		r := NewRTC(clock.now)
		index, regA, regB := byte(0), byte(0x20), byte(RTCB24Hour)
		ram := map[byte]byte{}
		var frozen rtcView
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			var restarted *time.Time // the time clearing SET must start from
			switch op % opKinds {
			case opIndex:
				regWrite(r, RTCIndexOffset, v)
				index = v
			case opData:
				reg := index & rtcIndexMask
				set := regB&RTCBSet != 0
				switch {
				case reg == RTCRegA:
					regA = v &^ RTCAUpdating
				case reg == RTCRegB:
					if v&RTCBSet != 0 && !set {
						frozen = rtcPeekTime(r)
					}
					if v&RTCBSet == 0 && set {
						if fl, ok := rtcDecode(frozen, v); ok {
							if t0, ok := fl.time(); ok && withinOffset(t0, clock.t) {
								restarted = &t0
							}
						}
					}
					regB = v
				case isRTCTimeReg(reg) && set:
					for j, tr := range rtcTimeRegs {
						if tr == reg {
							frozen[j] = v
						}
					}
				case isRTCRAM(reg):
					ram[reg] = v
				}
				regWrite(r, RTCDataOffset, v)
			case opReadData:
				regRead(r, RTCDataOffset)
			case opReadIndex:
				if got := regRead(r, RTCIndexOffset); got != index {
					t.Fatalf("op %d: Read(index) = %#02x, want %#02x as written", i/2, got, index)
				}
			case opAdvance:
				clock.t = clock.t.Add(time.Duration(v) << (op >> 3 & 31))
			case opRestore:
				r = RestoreRTC(r.State(), clock.now)
			}
			checkRTC(t, i/2, r, clock, regA, regB, ram, frozen, restarted)
		}
	})
}

// withinOffset says whether t is close enough to the host clock now for
// RTCState.Offset, a time.Duration (about 292 years either way), to reach.
// A guest that writes a time farther off gets a clock elsewhere: a limit
// of the device, not of the data sheet, which FuzzRTC leaves aside.
func withinOffset(t, now time.Time) bool {
	const reach = 290 * 365 * 24 * time.Hour
	return t.After(now.Add(-reach)) && t.Before(now.Add(reach))
}

// checkRTC holds r to the data sheet after op n (see FuzzRTC).
func checkRTC(t *testing.T, n int, r *RTC, clock *fakeClock, regA, regB byte, ram map[byte]byte, frozen rtcView, restarted *time.Time) {
	t.Helper()
	a, b, c, d := rtcPeek(r, RTCRegA), rtcPeek(r, RTCRegB), rtcPeek(r, RTCRegC), rtcPeek(r, RTCRegD)
	if b != regB || a&^RTCAUpdating != regA || d != RTCDValid {
		t.Fatalf("op %d: registers A, B, D = %#02x, %#02x, %#02x, want A %#02x (UIP aside), B %#02x, D %#02x", n, a, b, d, regA, regB, RTCDValid)
	}
	irqf := c&0x40 != 0 && b&RTCBPIE != 0 || c&0x20 != 0 && b&RTCBAIE != 0 || c&0x10 != 0 && b&RTCBUIE != 0
	if c&0x0f != 0 || (c&0x80 != 0) != irqf {
		t.Fatalf("op %d: register C = %#02x with B %#02x, want low bits 0 and IRQF = %v", n, c, b, irqf)
	}
	for reg, want := range ram {
		if got := rtcPeek(r, reg); got != want {
			t.Fatalf("op %d: CMOS[%#02x] = %#02x, want %#02x as written", n, reg, got, want)
		}
	}
	view := rtcPeekTime(r)
	if b&RTCBSet != 0 {
		if view != frozen || a&RTCAUpdating != 0 {
			t.Fatalf("op %d: with SET on, time registers % x and UIP %v, want % x as written and UIP 0", n, view[:], a&RTCAUpdating != 0, frozen[:])
		}
		return
	}
	now := clock.now().Add(r.State().Offset).UTC()
	got, ok := rtcDecode(view, b)
	if y := now.Year(); y >= 0 && y <= 9999 {
		if want := rtcFieldsOf(now); !ok || got != want {
			t.Fatalf("op %d: time registers % x decode (B %#02x) to %+v (valid %v), want %+v, the device's clock %v", n, view[:], b, got, ok, want, now)
		}
	}
	if restarted != nil && !now.Equal(*restarted) {
		t.Fatalf("op %d: clearing SET started the clock at %v, want %v as written", n, now, *restarted)
	}
	// UIP promises the registers will not change for 244 us, or warns
	// they will: look at a copy of the clock that far on.
	later := func(d time.Duration) rtcView {
		at := clock.now().Add(d)
		return rtcPeekTime(RestoreRTC(r.State(), func() time.Time { return at }))
	}
	const uipLead = 244 * time.Microsecond // the data sheet's, not the device's constant
	if a&RTCAUpdating == 0 {
		if v := later(uipLead - 1); v != view {
			t.Fatalf("op %d: UIP is 0 at %v, but the time registers change from % x to % x within 244 us", n, now, view[:], v[:])
		}
	} else if v := later(uipLead); v == view {
		t.Fatalf("op %d: UIP is 1 at %v, but the time registers hold % x for 244 us", n, now, view[:])
	}
}
