package testvm

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultWatchdog is how long the emulated machine may show no sign of
// life before Run gives up on it, when Config.Watchdog is 0. Its heartbeat
// comes every beatSeconds (heartbeat.go), so only a frozen or wedged
// machine is silent this long; with the report and the kill, Run returns
// within a minute.
const DefaultWatchdog = 40 * time.Second

// ErrStalled is what a *StallError is (errors.Is): the watchdog found the
// emulated machine frozen or silent, read QEMU's state, and killed it.
var ErrStalled = errors.New("testvm: the emulated machine stalled")

// StallError is Run's error when the watchdog gave up on the machine.
type StallError struct {
	Silence time.Duration // how long no heartbeat and no console output came
	After   time.Duration // since QEMU started
	Poke    string        // what the poke at half the silence did
	Pokes   int           // earlier pokes that woke the machine
	// LastBeat is the machine's uptime in seconds in its last heartbeat,
	// as the guest wrote it, or "" when none came.
	LastBeat string
	Output   string // the last lines of the guest's console
	State    string // QEMU's `info registers -a` and `info lapic`, or why they could not be read
}

func (e *StallError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "testvm: the emulated machine stalled: no heartbeat and no console output for %v (%v after QEMU started); %s; QEMU was killed.",
		e.Silence.Round(time.Second), e.After.Round(time.Second), e.Poke)
	if e.Pokes > 0 {
		fmt.Fprintf(&b, " Earlier pokes that woke it: %d.", e.Pokes)
	}
	b.WriteString(" A machine frozen like this is what QEMU's SVM race does (see testvm's periodicTickArgs; fixed in QEMU 10.2); run it again. A program that keeps the machine too busy to write its heartbeat can raise Config.Watchdog.")
	beat := "none came"
	if e.LastBeat != "" {
		beat = "the machine's uptime was " + e.LastBeat + " s"
	}
	fmt.Fprintf(&b, "\nlast heartbeat: %s\nlast guest output:\n%s\nQEMU's state:\n%s", beat, indent(e.Output), indent(e.State))
	return b.String()
}

// Is makes errors.Is(err, ErrStalled) true.
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// stallAction is what the watchdog does after a look at the machine.
type stallAction int

const (
	keepWatching stallAction = iota + 1 // the machine lives (or the poke's time is not up)
	pokeMachine                         // silent for a period: poke it
	pokeAnswered                        // it showed life after the poke
	giveUp                              // silent for another period after the poke
)

// stallWatch decides, from the time of the last sign of life, when to poke
// the machine and when to give up; times count from when QEMU started.
//
//	Watching --silent for period--> Poked --silent for another period--> Stalled
//	    ^                             |
//	    +------ a sign of life -------+
type stallWatch struct {
	period  time.Duration
	poked   bool
	pokedAt time.Duration
}

// step looks at the machine at now, given its last sign of life, and says
// what to do and how long to wait before the next look.
func (s *stallWatch) step(now, last time.Duration) (stallAction, time.Duration) {
	if s.poked {
		if last > s.pokedAt {
			s.poked = false
			return pokeAnswered, max(s.period-(now-last), 0)
		}
		if waited := now - s.pokedAt; waited < s.period {
			return keepWatching, s.period - waited
		}
		return giveUp, 0
	}
	if idle := now - last; idle < s.period {
		return keepWatching, s.period - idle
	}
	s.poked, s.pokedAt = true, now
	return pokeMachine, s.period
}

// watchdog watches the signs of life of a running machine (alive is called
// for each), pokes it when it falls silent for half of limit, and gives up
// when it stays silent for limit.
type watchdog struct {
	limit time.Duration
	start time.Time
	now   func() time.Time                     // time.Now; a test's clock
	after func(time.Duration) <-chan time.Time // time.After; a test's clock

	poke   func() error  // presses a key on the machine
	report func() string // reads QEMU's state for the StallError
	logf   func(format string, args ...any)

	last     atomic.Int64 // the last sign of life, in nanoseconds since start
	poked    atomic.Bool
	answered chan struct{} // a sign of life while poked
}

// newWatchdog returns a watchdog that counts the machine alive until grace
// after it starts, the time its boot may take beyond the usual (see
// bootGrace).
func newWatchdog(limit, grace time.Duration, poke func() error, report func() string, logf func(string, ...any)) *watchdog {
	w := &watchdog{
		limit: limit, start: time.Now(), now: time.Now, after: time.After,
		poke: poke, report: report, logf: logf,
		answered: make(chan struct{}, 1),
	}
	w.last.Store(int64(grace))
	return w
}

// unpackRate is a slow rate at which the machine's kernel unpacks its
// initramfs: it did 365 MB in 5.3 s (70 MB/s) on a quiet host, before
// /init, and so the heartbeat, can start.
const unpackRate = 20 << 20 // bytes per second

// bootGrace is the silence the watchdog allows beyond its limit at the
// start, for unpacking an initramfs of size bytes.
func bootGrace(size int64) time.Duration {
	return time.Duration(size) * time.Second / unpackRate
}

// alive records a sign of life: console output or a heartbeat. It is safe
// to call from any goroutine and costs two atomic operations.
func (w *watchdog) alive() {
	t := int64(w.now().Sub(w.start))
	for {
		old := w.last.Load()
		if t <= old || w.last.CompareAndSwap(old, t) {
			break
		}
	}
	if w.poked.Load() {
		select {
		case w.answered <- struct{}{}:
		default:
		}
	}
}

// run watches until done is closed (nil then) or the machine stays silent
// for the limit (a StallError without Output, which the caller adds).
func (w *watchdog) run(done <-chan struct{}) *StallError {
	st := stallWatch{period: w.limit / 2}
	wait := st.period
	pokes, pokeResult := 0, ""
	for {
		select {
		case <-done:
			return nil
		case <-w.after(wait):
		case <-w.answered:
		}
		now := w.now().Sub(w.start)
		last := time.Duration(w.last.Load())
		var act stallAction
		act, wait = st.step(now, last)
		switch act {
		case pokeMachine:
			w.poked.Store(true)
			silence := (now - last).Round(time.Second)
			if err := w.poke(); err != nil {
				pokeResult = fmt.Sprintf("the poke after %v of silence failed (%v)", silence, err)
				w.logf("testvm: the emulated machine has shown no sign of life for %v, and poking it failed: %v", silence, err)
				break
			}
			pokeResult = fmt.Sprintf("a key press (%s) through QEMU's monitor after %v of silence did not wake it", pokeKey, silence)
			w.logf("testvm: the emulated machine has shown no sign of life for %v; pressed %s through QEMU's monitor to wake it", silence, pokeKey)
		case pokeAnswered:
			w.poked.Store(false)
			pokes++
			w.logf("testvm: the emulated machine woke after the poke (pokes that woke it: %d): QEMU's race had frozen it (see testvm's periodicTickArgs), or it was only slow", pokes)
		case giveUp:
			return &StallError{Silence: now - last, After: now, Poke: pokeResult, Pokes: pokes, State: w.report()}
		}
	}
}
