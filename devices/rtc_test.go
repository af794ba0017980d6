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
