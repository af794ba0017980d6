package devices

import (
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	l := newLogLimit(3, 100*time.Millisecond)
	steps := []struct {
		ms       int
		ok       bool
		heldBack uint64
	}{
		{0, true, 0}, {0, true, 0}, {1, true, 0}, // the burst
		{2, false, 0}, {50, false, 0}, // held back
		{100, true, 2},   // one token back after an interval; says 2 were held back
		{101, false, 0},  // and it is spent
		{350, true, 1},   // 2 more tokens by 300 ms
		{351, true, 0},   //
		{352, false, 0},  //
		{10000, true, 1}, // a long quiet spell refills the burst, no more
		{10000, true, 0}, {10000, true, 0}, {10000, false, 0},
	}
	for i, st := range steps {
		ok, held := l.allow(at(st.ms))
		if ok != st.ok || held != st.heldBack {
			t.Errorf("step %d: allow(%d ms) = %v, %d, want %v, %d", i, st.ms, ok, held, st.ok, st.heldBack)
		}
	}
	if got, want := l.heldBack(), uint64(5); got != want {
		t.Errorf("heldBack() = %d, want %d", got, want)
	}
}
