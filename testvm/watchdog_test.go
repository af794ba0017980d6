package testvm

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStallWatchStep(t *testing.T) {
	const p = 10 * time.Second
	type look struct {
		now, last time.Duration
		want      stallAction
		wantWait  time.Duration
	}
	tests := []struct {
		name  string
		looks []look // in order, on one stallWatch
	}{
		{"alive", []look{
			{p, 3 * time.Second, keepWatching, 3 * time.Second},
			{13 * time.Second, 12 * time.Second, keepWatching, 9 * time.Second},
		}},
		{"silent from the start", []look{
			{p, 0, pokeMachine, p},
			{2 * p, 0, giveUp, 0},
		}},
		{"looked at early after the poke", []look{
			{p, 0, pokeMachine, p},
			{p + 4*time.Second, 0, keepWatching, 6 * time.Second},
			{2 * p, 0, giveUp, 0},
		}},
		{"woken by the poke", []look{
			{15 * time.Second, 5 * time.Second, pokeMachine, p},
			{16 * time.Second, 16 * time.Second, pokeAnswered, p},
			{26 * time.Second, 16 * time.Second, pokeMachine, p},
			{36 * time.Second, 16 * time.Second, giveUp, 0},
		}},
		{"woken, then looked at late", []look{
			{p, 0, pokeMachine, p},
			{40 * time.Second, 12 * time.Second, pokeAnswered, 0},
			{40 * time.Second, 12 * time.Second, pokeMachine, p},
		}},
		{"life at the poke's instant is no answer", []look{
			{p, 0, pokeMachine, p},
			{2 * p, p, giveUp, 0},
		}},
	}
	for _, tt := range tests {
		s := stallWatch{period: p}
		for i, l := range tt.looks {
			act, wait := s.step(l.now, l.last)
			if act != l.want || wait != l.wantWait {
				t.Errorf("%s, look %d: step(%v, %v) = %d, %v, want %d, %v", tt.name, i, l.now, l.last, act, wait, l.want, l.wantWait)
			}
		}
	}
}

// fakeClock drives a watchdog: its After hands each wait to the test, which
// moves the time on and fires it.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits chan fakeTimer
}

type fakeTimer struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Unix(1000, 0), waits: make(chan fakeTimer)}
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func (f *fakeClock) after(d time.Duration) <-chan time.Time {
	t := fakeTimer{d, make(chan time.Time, 1)}
	f.waits <- t
	return t.fire
}

// next returns the watchdog's next wait, failing if none comes soon.
func (f *fakeClock) next(t *testing.T) fakeTimer {
	t.Helper()
	select {
	case w := <-f.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not wait again")
		return fakeTimer{}
	}
}

// expire moves the clock to the end of w and fires it.
func (f *fakeClock) expire(w fakeTimer) {
	f.advance(w.d)
	w.fire <- f.now()
}

// testWatchdog is a watchdog on a fake clock whose pokes, reports and log
// lines go to channels.
type testWatchdog struct {
	*watchdog
	clock   *fakeClock
	pokes   chan struct{}
	logs    chan string
	result  chan *StallError
	done    chan struct{}
	pokeErr error
}

func startWatchdog(t *testing.T, limit, grace time.Duration, pokeErr error) *testWatchdog {
	t.Helper()
	tw := &testWatchdog{clock: newFakeClock(), pokes: make(chan struct{}, 10), logs: make(chan string, 10),
		result: make(chan *StallError, 1), done: make(chan struct{}), pokeErr: pokeErr}
	tw.watchdog = newWatchdog(limit, grace,
		func() error { tw.pokes <- struct{}{}; return tw.pokeErr },
		func() string { return "RIP=ffffffff81000000" },
		func(format string, args ...any) { tw.logs <- fmt.Sprintf(format, args...) })
	tw.now, tw.after, tw.start = tw.clock.now, tw.clock.after, tw.clock.now()
	go func() { tw.result <- tw.run(tw.done) }()
	return tw
}

func (tw *testWatchdog) log(t *testing.T, want string) {
	t.Helper()
	select {
	case l := <-tw.logs:
		if !strings.Contains(l, want) {
			t.Errorf("watchdog log = %q, want %q in it", l, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the watchdog logged nothing, want %q", want)
	}
}

func (tw *testWatchdog) end(t *testing.T) *StallError {
	t.Helper()
	select {
	case s := <-tw.result:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog did not end")
		return nil
	}
}

func TestWatchdogGivesUp(t *testing.T) {
	tw := startWatchdog(t, 40*time.Second, 0, nil)
	w := tw.clock.next(t)
	if w.d != 20*time.Second {
		t.Errorf("first wait = %v, want half the limit, 20s", w.d)
	}
	tw.clock.expire(w)
	tw.log(t, "no sign of life for 20s; pressed shift")
	if len(tw.pokes) != 1 {
		t.Errorf("pokes = %d, want 1", len(tw.pokes))
	}
	tw.clock.expire(tw.clock.next(t))
	s := tw.end(t)
	if s == nil || s.Silence != 40*time.Second || s.After != 40*time.Second || s.State != "RIP=ffffffff81000000" || s.Pokes != 0 ||
		!strings.Contains(s.Poke, "did not wake it") {
		t.Errorf("run() = %+v, want a 40s stall with the report", s)
	}
}

func TestWatchdogWokenByPoke(t *testing.T) {
	tw := startWatchdog(t, 40*time.Second, 0, nil)
	w := tw.clock.next(t)
	tw.clock.advance(5 * time.Second)
	tw.alive() // not poked: no wake-up, only a later deadline
	tw.clock.advance(15 * time.Second)
	w.fire <- tw.clock.now() // t=20s, idle 15s
	w = tw.clock.next(t)
	if w.d != 5*time.Second {
		t.Errorf("wait after life at 5s, looked at 20s = %v, want 5s", w.d)
	}
	tw.clock.expire(w)
	tw.log(t, "pressed shift")
	tw.clock.next(t) // the watchdog waits for the poke's answer
	tw.clock.advance(3 * time.Second)
	tw.alive() // the machine wakes: the watchdog notes it at once
	tw.log(t, "woke after the poke (pokes that woke it: 1)")
	w = tw.clock.next(t)
	if w.d != 20*time.Second {
		t.Errorf("wait after the machine woke = %v, want a full period", w.d)
	}
	close(tw.done)
	if s := tw.end(t); s != nil {
		t.Errorf("run() = %v after done, want nil", s)
	}
}

func TestWatchdogPokeFails(t *testing.T) {
	tw := startWatchdog(t, 2*time.Second, 0, errors.New("no monitor"))
	tw.clock.expire(tw.clock.next(t))
	tw.log(t, "poking it failed: no monitor")
	tw.clock.expire(tw.clock.next(t))
	if s := tw.end(t); s == nil || !strings.Contains(s.Poke, "failed (no monitor)") {
		t.Errorf("run() = %+v, want a stall whose Poke says the poke failed", s)
	}
}

// TestWatchdogBootGrace checks that the machine may be silent for the
// grace on top of the first period before the first poke.
func TestWatchdogBootGrace(t *testing.T) {
	tw := startWatchdog(t, 40*time.Second, 30*time.Second, nil)
	w := tw.clock.next(t)
	tw.clock.expire(w)
	w = tw.clock.next(t)
	if w.d != 30*time.Second || len(tw.pokes) != 0 {
		t.Errorf("wait at the end of the first period = %v with %d pokes, want the 30s grace and none", w.d, len(tw.pokes))
	}
	tw.clock.expire(w)
	tw.log(t, "pressed shift")
	tw.clock.next(t)
	close(tw.done)
	if s := tw.end(t); s != nil {
		t.Errorf("run() = %v after done, want nil", s)
	}
}

func TestBootGrace(t *testing.T) {
	tests := []struct {
		size int64
		want time.Duration
	}{
		{0, 0}, {20 << 20, time.Second}, {365 << 20, 18250 * time.Millisecond}, {2 << 30, 102400 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := bootGrace(tt.size); got != tt.want {
			t.Errorf("bootGrace(%d) = %v, want %v", tt.size, got, tt.want)
		}
	}
}

func TestStallError(t *testing.T) {
	s := &StallError{Silence: 40 * time.Second, After: 65 * time.Second, Poke: "a key press did not wake it", Pokes: 2,
		LastBeat: "23.45", Output: "booting\nsleeping", State: "info registers -a:\n  RIP=ffffffff81000000"}
	var err error = fmt.Errorf("wrapped: %w", s)
	if !errors.Is(err, ErrStalled) {
		t.Errorf("errors.Is(%v, ErrStalled) = false, want true", err)
	}
	var got *StallError
	if !errors.As(err, &got) || got != s {
		t.Errorf("errors.As(StallError) = %v, want the StallError", got)
	}
	msg := s.Error()
	for _, want := range []string{"stalled", "for 40s (1m5s after QEMU started)", "did not wake it", "Earlier pokes that woke it: 2",
		"uptime was 23.45 s", "  booting\n  sleeping", "RIP=ffffffff81000000", "Config.Watchdog"} {
		if !strings.Contains(msg, want) {
			t.Errorf("StallError.Error() = %q, want %q in it", msg, want)
		}
	}
	if msg := (&StallError{}).Error(); !strings.Contains(msg, "last heartbeat: none came") || strings.Contains(msg, "Earlier pokes") {
		t.Errorf("StallError{}.Error() = %q, want no heartbeat and no earlier pokes", msg)
	}
}
