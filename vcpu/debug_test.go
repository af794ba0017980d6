package vcpu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// debugHW is a fakeHW that also takes KVM_SET_GUEST_DEBUG, recording each.
type debugHW struct {
	*fakeHW
	dmu sync.Mutex
	set []kvm.GuestDebugControl
}

func (d *debugHW) SetGuestDebug(g *kvm.GuestDebug) error {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	d.set = append(d.set, g.Control)
	return nil
}

func (d *debugHW) controls() []kvm.GuestDebugControl {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	return append([]kvm.GuestDebugControl(nil), d.set...)
}

// scripted is an observer that answers each exit from a list and writes
// down what it saw, before and after the loop handled it.
type scripted struct {
	mu      sync.Mutex
	answers []Action // one per Exit call; Continue when they run out
	seen    []string
	stopped chan struct{} // a token each time it answers Stop or StopAfter
}

func newScripted(answers ...Action) *scripted {
	return &scripted{answers: answers, stopped: make(chan struct{}, 16)}
}

func (s *scripted) Exit(ev *Event) Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := Continue
	if len(s.answers) > 0 {
		a, s.answers = s.answers[0], s.answers[1:]
	}
	what := fmt.Sprint(ev.Exit)
	if ev.Requested {
		what = "requested"
	}
	s.seen = append(s.seen, "exit "+what)
	if a == Stop || a == StopAfter {
		s.stopped <- struct{}{}
	}
	return a
}

func (s *scripted) Handled(ev *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, "handled "+fmt.Sprint(ev.Exit))
}

func (s *scripted) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.seen, "; ")
}

func (s *scripted) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case <-s.stopped:
	case <-time.After(10 * time.Second):
		t.Fatalf("the observer was not asked to stop within 10 s; it saw: %s", s.log())
	}
}

// TestObserverActions: what the loop does with each answer of Exit: the
// order of Exit and Handled, the data of a read filled in before Handled,
// single-stepping turned on and off for the next KVM_RUN, and exits a
// debugger consumed left unhandled.
func TestObserverActions(t *testing.T) {
	in := func() kvm.Exit { return &kvm.IOExit{Port: 0x3f8, Size: 1, Count: 1, Data: []byte{0}} }
	dbg := exitOf(&kvm.DebugExit{Exception: 1, DR6: 1 << 14})
	hlt := exitOf(&kvm.HLTExit{})
	tests := []struct {
		name      string
		script    []func() kvm.Exit
		answers   []Action
		consume   bool
		wantSeen  string
		wantDebug []kvm.GuestDebugControl
		wantErr   string
	}{
		{
			name:     "continue: every exit seen before and after, a read's data filled in",
			script:   []func() kvm.Exit{in, ioOut(0x3f8, "a"), hlt},
			wantSeen: "exit io in port 0x3f8 size 1 count 1 data 00; handled io in port 0x3f8 size 1 count 1 data 5a; exit io out port 0x3f8 size 1 count 1 data 61; handled io out port 0x3f8 size 1 count 1 data 61; exit hlt; handled hlt",
		},
		{
			name:      "step: single-step on for one run, debug exit taken as the debugger's, then off",
			script:    []func() kvm.Exit{ioOut(0x3f8, "a"), dbg, hlt},
			answers:   []Action{Step, Continue},
			wantSeen:  "exit io out port 0x3f8 size 1 count 1 data 61; handled io out port 0x3f8 size 1 count 1 data 61; exit debug: exception 1 at pc 0x0 dr6 0x4000 dr7 0x0; handled debug: exception 1 at pc 0x0 dr6 0x4000 dr7 0x0; exit hlt; handled hlt",
			wantDebug: []kvm.GuestDebugControl{kvm.GuestDebugEnable | kvm.GuestDebugSingleStep, 0},
		},
		{
			name:     "a debug exit with no debugging on is an error",
			script:   []func() kvm.Exit{dbg},
			wantSeen: "exit debug: exception 1 at pc 0x0 dr6 0x4000 dr7 0x0; handled debug: exception 1 at pc 0x0 dr6 0x4000 dr7 0x0",
			wantErr:  "no debugger attached",
		},
		{
			name:     "consumed: the loop leaves the exit alone",
			script:   []func() kvm.Exit{exitOf(&kvm.ShutdownExit{}), hlt},
			consume:  true,
			wantSeen: "exit shutdown (triple fault); handled shutdown (triple fault); exit hlt; handled hlt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw := &debugHW{fakeHW: newFakeHW(tt.script...)}
			v, _, _ := newTestVCPU(t, hw.fakeHW)
			v.HW = hw
			obs := newScripted(tt.answers...)
			var o Observer = obs
			if tt.consume {
				o = Chain{obs, consumer{}}
			}
			v.SetObserver(o)
			_, err := v.Run(context.Background())
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run() error = %v, want one containing %q", err, tt.wantErr)
			}
			if got := obs.log(); got != tt.wantSeen {
				t.Errorf("observer saw:\n%s\nwant:\n%s", got, tt.wantSeen)
			}
			if got := hw.controls(); fmt.Sprint(got) != fmt.Sprint(tt.wantDebug) {
				t.Errorf("KVM_SET_GUEST_DEBUG controls = %#x, want %#x", got, tt.wantDebug)
			}
		})
	}
}

// consumer consumes every exit but the halt.
type consumer struct{}

func (consumer) Exit(ev *Event) Action {
	if _, ok := ev.Exit.(*kvm.HLTExit); !ok {
		ev.Consume()
	}
	return Continue
}
func (consumer) Handled(*Event) {}

// TestChainStrongestAction: a chain answers with the strongest action of
// its observers, and every one of them sees the event.
func TestChainStrongestAction(t *testing.T) {
	tests := []struct {
		in   []Action
		want Action
	}{
		{nil, Continue},
		{[]Action{Continue, Continue}, Continue},
		{[]Action{Step, Continue}, Step},
		{[]Action{Continue, StopAfter, Step}, StopAfter},
		{[]Action{Stop, StopAfter, Step}, Stop},
	}
	for _, tt := range tests {
		var c Chain
		var obs []*scripted
		for _, a := range tt.in {
			s := newScripted(a)
			obs = append(obs, s)
			c = append(c, s)
		}
		ev := &Event{Exit: &kvm.HLTExit{}, State: &Handle{v: &VCPU{}}}
		if got := c.Exit(ev); got != tt.want {
			t.Errorf("Chain%v.Exit() = %v, want %v", tt.in, got, tt.want)
		}
		for i, s := range obs {
			if got := s.log(); got != "exit hlt" {
				t.Errorf("Chain%v: observer %d saw %q, want %q", tt.in, i, got, "exit hlt")
			}
		}
	}
}

// TestInterruptDebugState walks the Debug state: Interrupt stops a
// spinning guest through its observer, Do runs on the stopped vCPU and
// sees its registers, Pause is refused, Release runs the guest again, and
// Stop ends a vCPU held in the Debug state.
func TestInterruptDebugState(t *testing.T) {
	hw := newFakeHW() // spins until kicked
	hw.regs.RIP = 0x1234
	v, _, _ := newTestVCPU(t, hw)
	obs := newScripted(Stop) // stops at the first event: the Requested one
	v.SetObserver(obs)
	done := startRun(t, v, hw)
	v.Interrupt()
	obs.waitStopped(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rip uint64
	if err := v.Do(ctx, func(h *Handle) error {
		r, err := h.Regs()
		if err == nil {
			rip = r.RIP
		}
		return err
	}); err != nil || rip != 0x1234 {
		t.Fatalf("Do(read RIP) = %#x, %v, want 0x1234, nil", rip, err)
	}
	if s := v.RunState(); s != Debug {
		t.Fatalf("RunState() while held = %v, want %v", s, Debug)
	}
	if err := v.Pause(ctx); err == nil || !strings.Contains(err.Error(), "debug") {
		t.Errorf("Pause() in the Debug state = %v, want a refusal naming the state", err)
	}
	if err := v.Release(ctx, Stop); err == nil {
		t.Errorf("Release(Stop) = nil, want an error: Stop is not a way to go on")
	}
	if err := v.Release(ctx, Continue); err != nil {
		t.Fatalf("Release(Continue) = %v", err)
	}
	if s := v.RunState(); s != Running {
		t.Errorf("RunState() after Release = %v, want %v", s, Running)
	}
	hw.waitEntered(t, "the guest did not run again after Release")
	// Held again, then stopped from outside.
	obs.mu.Lock()
	obs.answers = []Action{Stop}
	obs.mu.Unlock()
	v.Interrupt()
	obs.waitStopped(t)
	if err := v.Do(ctx, func(*Handle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	stopRun(t, v, done)
	if err := v.Do(ctx, func(*Handle) error { return nil }); err == nil {
		t.Errorf("Do() after Run returned = nil, want an error")
	}
}

// TestInterruptBeforeRun: a debugger that interrupts a vCPU before Run
// holds it before its first instruction (the stepper and -gdb start so).
func TestInterruptBeforeRun(t *testing.T) {
	hw := newFakeHW(exitOf(&kvm.HLTExit{}))
	v, _, _ := newTestVCPU(t, hw)
	obs := newScripted(Stop)
	v.SetObserver(obs)
	v.Interrupt()
	done := make(chan error, 1)
	go func() {
		_, err := v.Run(context.Background())
		done <- err
	}()
	obs.waitStopped(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Do(ctx, func(*Handle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	hw.mu.Lock()
	runs := hw.runs
	hw.mu.Unlock()
	if runs != 0 {
		t.Errorf("KVM_RUN calls before the first stop = %d, want 0", runs)
	}
	if err := v.Release(ctx, Continue); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run() = %v", err)
	}
	// The kick that asked for the stop also set immediate_exit, so the
	// first KVM_RUN returns at once: the loop shows that to observers too.
	if got, want := obs.log(), "exit requested; exit interrupted; handled interrupted; exit hlt; handled hlt"; got != want {
		t.Errorf("observer saw %q, want %q", got, want)
	}
}

// TestStopAfterHoldsHandledExit: StopAfter holds the vCPU once the exit
// is handled (the device has the byte), and Release(StopAfter) at a Stop
// handles the exit and holds it again.
func TestStopAfterHoldsHandledExit(t *testing.T) {
	hw := newFakeHW(ioOut(0x3f8, "a"), ioOut(0x3f8, "b"), exitOf(&kvm.HLTExit{}))
	v, dev, _ := newTestVCPU(t, hw)
	obs := newScripted(StopAfter, Stop)
	v.SetObserver(obs)
	done := make(chan error, 1)
	go func() {
		_, err := v.Run(context.Background())
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	writes := func() string {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		return strings.Join(dev.writes, "")
	}
	obs.waitStopped(t)
	if err := v.Do(ctx, func(*Handle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := writes(); got != "a" {
		t.Errorf("device writes while held after the first exit = %q, want %q", got, "a")
	}
	if err := v.Release(ctx, Continue); err != nil {
		t.Fatal(err)
	}
	obs.waitStopped(t) // Stop at "b", before it is handled
	if err := v.Do(ctx, func(*Handle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := writes(); got != "a" {
		t.Errorf("device writes while held at the second exit = %q, want %q", got, "a")
	}
	if err := v.Release(ctx, StopAfter); err != nil {
		t.Fatal(err)
	}
	if err := v.Do(ctx, func(*Handle) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := writes(); got != "ab" {
		t.Errorf("device writes after Release(StopAfter) = %q, want %q", got, "ab")
	}
	if err := v.Release(ctx, Continue); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run() = %v", err)
	}
}

// loopHW returns the same port write n times, then a halt, and does
// nothing else: a KVM_RUN that costs no allocation of its own.
type loopHW struct {
	fakeHW
	n   int
	out kvm.IOExit
	hlt kvm.HLTExit
}

func (l *loopHW) Run() (kvm.Exit, error) {
	if l.n == 0 {
		return &l.hlt, nil
	}
	l.n--
	return &l.out, nil
}

func (l *loopHW) SetImmediateExit(bool) {}

// nopDevice accepts every access.
type nopDevice struct{}

func (nopDevice) Read(uint64, []byte)  {}
func (nopDevice) Write(uint64, []byte) {}

// runAllocs is the number of allocations of building a vCPU and running it
// through n port-write exits with observer o (nil for none).
func runAllocs(t *testing.T, n int, o Observer) float64 {
	t.Helper()
	io := devices.NewBus(devices.PortIO)
	if err := io.Register(0x3f8, 8, "nop", nopDevice{}); err != nil {
		t.Fatal(err)
	}
	data := []byte{'x'}
	return testing.AllocsPerRun(5, func() {
		hw := &loopHW{n: n, out: kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 1, Data: data}}
		v := New(Config{HW: hw, IO: io, MMIO: devices.NewBus(devices.MMIO)})
		if o != nil {
			v.SetObserver(o)
		}
		if r, err := v.Run(context.Background()); err != nil || r != StopHalt {
			t.Fatalf("Run() = %v, %v, want halt", r, err)
		}
	})
}

// TestHotPathAllocatesNothing: the run loop allocates nothing per exit,
// with no observer (tracing off) and with one that only watches: a run of
// 10,000 exits allocates as much as a run of 10.
func TestHotPathAllocatesNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Observer
	}{
		{"no observer", nil},
		{"a watching observer", Chain{&countingObserver{}, &countingObserver{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			few, many := runAllocs(t, 10, tt.o), runAllocs(t, 10010, tt.o)
			if many != few {
				t.Errorf("allocations of a run with 10010 exits = %v, with 10 exits = %v: want the same (%.4f per exit)", many, few, (many-few)/10000)
			}
		})
	}
}
