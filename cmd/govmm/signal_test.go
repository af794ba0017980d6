package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSignalContext sends this process SIGINT and SIGTERM and checks the
// context ends with a cause that gives the shell's status for each.
func TestSignalContext(t *testing.T) {
	for _, tt := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		ctx, stop := signalContext(context.Background())
		if err := syscall.Kill(os.Getpid(), tt.sig); err != nil {
			stop()
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			stop()
			t.Fatalf("signalContext: no cancel 10s after %v", tt.sig)
		}
		var s *stopSignal
		if cause := context.Cause(ctx); !errors.As(cause, &s) || s.status() != tt.want {
			t.Errorf("signalContext after %v: cause %v, want a stopSignal with status %d", tt.sig, cause, tt.want)
		}
		stop()
	}
	ctx, stop := signalContext(context.Background())
	stop()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		t.Errorf("signalContext after stop: cause %v, want context.Canceled", cause)
	}
}
