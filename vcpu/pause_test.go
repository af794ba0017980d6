package vcpu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm"
)

// runResult is what Run returned, for tests that run it on a goroutine.
type runResult struct {
	reason StopReason
	err    error
}

// startRun runs v on a goroutine and waits until its loop spins in the
// fake's KVM_RUN.
func startRun(t *testing.T, v *VCPU, hw *fakeHW) <-chan runResult {
	t.Helper()
	done := make(chan runResult, 1)
	go func() {
		r, err := v.Run(context.Background())
		done <- runResult{r, err}
	}()
	hw.waitEntered(t, "Run never reached the guest")
	return done
}

// stopRun stops v and checks that Run returns StopCanceled.
func stopRun(t *testing.T, v *VCPU, done <-chan runResult) {
	t.Helper()
	v.Stop()
	select {
	case res := <-done:
		if res.err != nil || res.reason != StopCanceled {
			t.Errorf("Run() after Stop = %v, %v, want %v, nil", res.reason, res.err, StopCanceled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10 s of Stop")
	}
}

// canceled is a context that has already ended.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// within runs f on a goroutine and fails t if it has not returned in 10 s:
// for calls that must not block.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked for 10 s", what)
		return nil
	}
}

// TestPauseTimeoutWithdraws: a Pause that gives up before the loop gets to
// it leaves nothing behind. The loop is held inside KVM_RUN (a kick it has
// not noticed yet) while the Pause times out; released, it must go back
// into the guest rather than pause for the withdrawn request, and the next
// Pause must return only once the loop has really paused. Before requests
// were withdrawn, the loop paused anyway and left a stale acknowledgement.
func TestPauseTimeoutWithdraws(t *testing.T) {
	hw := newFakeHW()
	hw.holdRuns()
	v, _, _ := newTestVCPU(t, hw)
	done := startRun(t, v, hw)

	err := v.Pause(canceled())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pause(canceled ctx) with the loop in KVM_RUN = %v, want context.Canceled", err)
	}
	if s := v.RunState(); s != Running {
		t.Errorf("RunState() after a withdrawn Pause = %v, want %v", s, Running)
	}
	hw.release(&kvm.InterruptedExit{})
	hw.waitEntered(t, "it paused for a Pause that had already given up")
	if s := v.RunState(); s != Running {
		t.Errorf("RunState() back in KVM_RUN = %v, want %v", s, Running)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.Pause(ctx); err != nil {
		t.Fatalf("Pause() after the withdrawn one = %v", err)
	}
	if s, in := v.RunState(), hw.spinning(); s != Paused || in {
		t.Errorf("after Pause() = nil: RunState() = %v, in KVM_RUN = %v, want %v, false", s, in, Paused)
	}
	if err := v.Resume(); err != nil {
		t.Fatalf("Resume() = %v", err)
	}
	stopRun(t, v, done)
}

// TestPauseTimeoutRace: the loop answers the Pause at the very moment its
// context ends. The kick hook holds Pause between its request and its wait
// until the loop has paused for that request; the context has ended too,
// so Pause's wait sees both at once and may take either. Either way the
// pause stands: Pause returns nil and the vCPU is paused, never an error
// with a paused vCPU nobody will resume. Repeated so that both of Pause's
// paths run.
func TestPauseTimeoutRace(t *testing.T) {
	for i := range 50 {
		hw := newFakeHW()
		hw.holdRuns()
		v, _, _ := newTestVCPU(t, hw)
		done := startRun(t, v, hw)
		hw.setOnKick(func() {
			hw.setOnKick(nil)
			v.mu.Lock()
			req := v.pending
			v.mu.Unlock()
			hw.release(&kvm.InterruptedExit{})
			<-req.paused // the loop has paused for this request
		})
		if err := v.Pause(canceled()); err != nil {
			t.Fatalf("try %d: Pause() answered as its context ended = %v, want nil (the loop paused)", i, err)
		}
		if s := v.RunState(); s != Paused {
			t.Fatalf("try %d: RunState() after Pause() = nil is %v, want %v", i, s, Paused)
		}
		if err := v.Resume(); err != nil {
			t.Fatalf("try %d: Resume() = %v", i, err)
		}
		stopRun(t, v, done)
	}
}

// TestResumeTwice: the second Resume fails at once instead of blocking or
// queueing a resume for the next pause, and the next Pause pauses again.
func TestResumeTwice(t *testing.T) {
	hw := newFakeHW()
	v, _, _ := newTestVCPU(t, hw)
	done := startRun(t, v, hw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := range 3 {
		if err := v.Pause(ctx); err != nil {
			t.Fatalf("round %d: Pause() = %v", round, err)
		}
		if err := v.Resume(); err != nil {
			t.Fatalf("round %d: Resume() = %v", round, err)
		}
		if s := v.RunState(); s != Running {
			t.Errorf("round %d: RunState() after Resume() = %v, want %v", round, s, Running)
		}
		if err := within(t, "a second Resume", v.Resume); err == nil {
			t.Errorf("round %d: second Resume() = nil, want an error (not paused)", round)
		}
	}
	stopRun(t, v, done)
}

// TestOnePauseAtATime: a second Pause while one waits is refused, and the
// first still gets its answer.
func TestOnePauseAtATime(t *testing.T) {
	hw := newFakeHW()
	hw.holdRuns()
	v, _, _ := newTestVCPU(t, hw)
	done := startRun(t, v, hw)
	kicked := make(chan struct{})
	hw.setOnKick(func() {
		hw.setOnKick(nil)
		close(kicked)
	})
	first := make(chan error, 1)
	go func() { first <- v.Pause(context.Background()) }()
	<-kicked // the first Pause has made its request
	if err := within(t, "a second Pause", func() error { return v.Pause(context.Background()) }); err == nil {
		t.Error("Pause() while another waits = nil, want an error")
	}
	hw.release(&kvm.InterruptedExit{})
	if err := <-first; err != nil {
		t.Fatalf("first Pause() = %v", err)
	}
	if err := v.Resume(); err != nil {
		t.Fatal(err)
	}
	stopRun(t, v, done)
}

// TestPauseWhenGuestStops: a Pause waiting when the guest stops by itself
// returns an error instead of waiting for its context, and a Pause after
// Run returned fails at once.
func TestPauseWhenGuestStops(t *testing.T) {
	hw := newFakeHW()
	hw.holdRuns()
	v, _, _ := newTestVCPU(t, hw)
	done := startRun(t, v, hw)
	kicked := make(chan struct{})
	hw.setOnKick(func() {
		hw.setOnKick(nil)
		close(kicked)
	})
	paused := make(chan error, 1)
	go func() { paused <- v.Pause(context.Background()) }()
	<-kicked
	hw.release(&kvm.HLTExit{}) // the guest halts before the loop sees the kick
	if res := <-done; res.err != nil || res.reason != StopHalt {
		t.Errorf("Run() = %v, %v, want %v, nil", res.reason, res.err, StopHalt)
	}
	if err := within(t, "Pause waiting when Run returned", func() error { return <-paused }); err == nil {
		t.Error("Pause() waiting when the guest halted = nil, want an error")
	}
	if err := within(t, "Pause after Run returned", func() error { return v.Pause(context.Background()) }); err == nil {
		t.Error("Pause() after Run returned = nil, want an error")
	}
	if err := v.Resume(); err == nil {
		t.Error("Resume() after Run returned = nil, want an error")
	}
}
