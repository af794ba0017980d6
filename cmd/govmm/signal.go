package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// signalContext returns a context that is canceled, with a *stopSignal as
// its cause, at the first SIGINT or SIGTERM, and the function that stops
// watching for them. While a VM has registered its power button with
// onTerminate, the first SIGTERM presses that instead and cancels the
// context only if the guest has not powered off after the grace period
// given there; a second SIGTERM, or SIGINT, cancels it at once.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	t := &terminator{}
	ctx = context.WithValue(ctx, terminatorKey{}, t)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for {
			select {
			case s := <-ch:
				if s == syscall.SIGTERM && t.press(func(grace time.Duration) { cancel(&stopSignal{sig: s, grace: grace}) }) {
					continue
				}
				cancel(&stopSignal{sig: s})
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// stopSignal is the cause of a context canceled by a signal. grace is
// non-zero when SIGTERM pressed the guest's power button first and the
// guest did not power off within it.
type stopSignal struct {
	sig   os.Signal
	grace time.Duration
}

func (s *stopSignal) Error() string {
	if s.grace > 0 {
		return fmt.Sprintf("stopped by %v: the guest did not power off within %v of the ACPI power-button press (-shutdown-timeout)", s.sig, s.grace)
	}
	return "stopped by " + s.sig.String()
}

// terminator is what SIGTERM does while a VM runs: press its power
// button, then give it grace to power off.
type terminator struct {
	mu      sync.Mutex
	button  func() // nil while no VM runs
	grace   time.Duration
	pressed bool
}

type terminatorKey struct{}

// press presses the running VM's power button, once, and calls expire
// after the grace period; it reports whether it did, and does not when no
// VM runs, the button was pressed already or the grace period is 0.
func (t *terminator) press(expire func(grace time.Duration)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.button == nil || t.pressed || t.grace <= 0 {
		return false
	}
	t.pressed = true
	t.button()
	grace := t.grace
	time.AfterFunc(grace, func() { expire(grace) })
	return true
}

// onTerminate makes SIGTERM, on a context from signalContext, press
// button and wait grace before stopping the run, until the returned
// function is called. On any other context it does nothing.
func onTerminate(ctx context.Context, button func(), grace time.Duration) func() {
	t, ok := ctx.Value(terminatorKey{}).(*terminator)
	if !ok {
		return func() {}
	}
	t.mu.Lock()
	t.button, t.grace = button, grace
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.button = nil
		t.mu.Unlock()
	}
}

// status is what a shell reports for a program killed by the signal:
// 128+n (130 for SIGINT, 143 for SIGTERM).
func (s *stopSignal) status() int {
	if n, ok := s.sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128
}
