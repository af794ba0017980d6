package devices

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDebugExitStatus(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want int
	}{
		{"zero", []byte{0}, 0},
		{"byte", []byte{42}, 42},
		{"0xff", []byte{0xff}, 255},
		{"word uses low byte", []byte{0x03, 0x01}, 3},
		{"dword uses low byte", []byte{0x07, 0xff, 0xff, 0xff}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := -1
			d := NewDebugExit(func(s int) { got = s }, time.Now(), &bytes.Buffer{})
			d.Write(DebugExitStatus, tt.p)
			if got != tt.want {
				t.Errorf("Write(0, % x): exit status = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}

func TestDebugExitMark(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var log bytes.Buffer
	d := NewDebugExit(nil, start, &log)
	d.now = func() time.Time { return start.Add(1234567 * time.Microsecond) }
	d.Write(DebugExitMark, []byte{7})
	want := "boot-timer: mark 7 (0x07) at 1234567 us (1.234567s) since VMM start\n"
	if got := log.String(); got != want {
		t.Errorf("log after Write(1, 7) = %q, want %q", got, want)
	}
	if got := d.State().Marks; got != 1 {
		t.Errorf("State().Marks = %d, want 1", got)
	}
	bad := NewDebugExit(nil, start, failingWriter{})
	bad.Write(DebugExitMark, []byte{1})
	if got := bad.LogErrors(); got != 1 {
		t.Errorf("LogErrors() with a failing log = %d, want 1", got)
	}
}

func TestDebugExitScratch(t *testing.T) {
	exits := 0
	d := NewDebugExit(func(int) { exits++ }, time.Now(), &bytes.Buffer{})
	for range 258 {
		d.Write(DebugExitScratch, []byte{0xaa})
	}
	tests := []struct {
		off  uint64
		want byte
	}{{DebugExitStatus, 0}, {DebugExitMark, 0}, {DebugExitScratch, 2}, {3, 0}}
	for _, tt := range tests {
		if got := regRead(d, tt.off); got != tt.want {
			t.Errorf("Read(%d) after 258 scratch writes = %d, want %d", tt.off, got, tt.want)
		}
	}
	if exits != 0 {
		t.Errorf("exits = %d, want 0", exits)
	}
	st := d.State()
	if got := RestoreDebugExit(st, nil, time.Now(), &bytes.Buffer{}).State(); got != st {
		t.Errorf("RestoreDebugExit(st).State() = %+v, want %+v", got, st)
	}
}

// TestDebugExitMarkRateLimit: a guest that writes marks in a tight loop
// gets MarkBurst lines, then one per MarkInterval, the first of which says
// how many were left out; every mark is still counted.
func TestDebugExitMarkRateLimit(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	var log bytes.Buffer
	d := NewDebugExit(nil, start, &log)
	d.now = func() time.Time { return now }
	const flood = 1000
	for range flood {
		d.Write(DebugExitMark, []byte{1})
	}
	if got, want := strings.Count(log.String(), "\n"), MarkBurst; got != want {
		t.Errorf("lines after %d marks at once = %d, want %d", flood, got, want)
	}
	if got, want := d.MarksHeldBack(), uint64(flood-MarkBurst); got != want {
		t.Errorf("MarksHeldBack() = %d, want %d", got, want)
	}
	log.Reset()
	now = now.Add(MarkInterval)
	d.Write(DebugExitMark, []byte{2})
	want := fmt.Sprintf("boot-timer: %d marks not logged (rate limit: %d, then one per %v)\n"+
		"boot-timer: mark 2 (0x02) at 100000 us (100ms) since VMM start\n", flood-MarkBurst, MarkBurst, MarkInterval)
	if got := log.String(); got != want {
		t.Errorf("log after one interval = %q, want %q", got, want)
	}
	if got, want := d.State().Marks, uint64(flood+1); got != want {
		t.Errorf("State().Marks = %d, want %d", got, want)
	}
}
