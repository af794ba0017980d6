package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// signalContext returns a context that is canceled, with a *stopSignal as
// its cause, at the first SIGINT or SIGTERM, and the function that stops
// watching for them.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			cancel(&stopSignal{s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// stopSignal is the cause of a context canceled by a signal.
type stopSignal struct{ sig os.Signal }

func (s *stopSignal) Error() string { return "stopped by " + s.sig.String() }

// status is what a shell reports for a program killed by the signal:
// 128+n (130 for SIGINT, 143 for SIGTERM).
func (s *stopSignal) status() int {
	if n, ok := s.sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128
}
