package vcpu_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// lineWatcher is the guest's serial output; seen is closed once it holds
// want.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := bytes.Contains(w.buf.Bytes(), []byte(w.want))
	w.buf.Write(p)
	if !had && bytes.Contains(w.buf.Bytes(), []byte(w.want)) {
		close(w.seen)
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestPauseSpinningGuest pauses the test guest's ring-3 spin loop on real
// KVM. First with deadlines too short to wait for, many times: each
// Pause either withdraws its request (an error; the vCPU keeps running and
// never pauses for it) or, when the loop answered first, returns nil with
// the vCPU paused in the guest. A request left behind would show
// as a vCPU found paused by the next try. Then a Pause with time must
// pause, one Resume resumes, a second Resume fails, and the guest stops
// when asked.
func TestPauseSpinningGuest(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatalf("building the test guests: %v", err)
	}
	elf, err := os.ReadFile(g.ELF)
	if err != nil {
		t.Fatal(err)
	}
	serial := &lineWatcher{want: "spin: ring 3 loops forever", seen: make(chan struct{})}
	m, err := machine.New(machine.Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: "mode=spin", MemSize: 64 << 20, CPUs: 1, SerialOut: serial})
	if err != nil {
		t.Fatalf("machine.New: %v", err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		res machine.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := m.Run(ctx)
		done <- result{res, err}
	}()
	select {
	case <-serial.seen:
	case r := <-done:
		t.Fatalf("Run() = %+v, %v before the guest spun; serial:\n%s", r.res, r.err, serial.String())
	}
	v := m.VCPUs()[0]

	// pausedInGuest checks a paused vCPU's state can be read and shows the
	// guest's code: its ring-3 spin loop (CS 0x33), or its ring-0 code
	// (CS 0x10) when an interrupt or the way to ring 3 was under way.
	pausedInGuest := func(when string) {
		t.Helper()
		if s := v.RunState(); s != vcpu.Paused {
			t.Fatalf("%s: RunState() = %v, want %v", when, s, vcpu.Paused)
		}
		st, err := v.SaveState()
		if err != nil {
			t.Fatalf("%s: SaveState() = %v", when, err)
		}
		if cs := st.Sregs.CS.Selector; cs != 0x33 && cs != 0x10 {
			t.Errorf("%s: paused in CS %#x, want the guest's 0x33 (ring 3) or 0x10 (ring 0)", when, cs)
		}
	}

	withdrawn, answered := 0, 0
	for i := range 300 {
		// Deadlines from 0 to about the time the loop takes to answer, so
		// that some end as it does.
		short, stop := context.WithTimeout(ctx, time.Duration(i%20)*time.Microsecond)
		err := v.Pause(short)
		stop()
		switch {
		case err == nil:
			answered++
			pausedInGuest("Pause(short deadline) = nil")
			if err := v.Resume(); err != nil {
				t.Fatalf("try %d: Resume() = %v", i, err)
			}
		case errors.Is(err, context.DeadlineExceeded):
			withdrawn++
			if s := v.RunState(); s != vcpu.Running {
				t.Fatalf("try %d: RunState() after a withdrawn Pause = %v, want %v", i, s, vcpu.Running)
			}
		default:
			t.Fatalf("try %d: Pause(short deadline) = %v, want nil or context.DeadlineExceeded", i, err)
		}
	}
	t.Logf("Pause with deadlines of 0-19 µs: %d withdrawn, %d answered", withdrawn, answered)

	for round := range 3 {
		if err := v.Pause(ctx); err != nil {
			t.Fatalf("round %d: Pause() = %v", round, err)
		}
		pausedInGuest("Pause() = nil")
		if err := v.Resume(); err != nil {
			t.Fatalf("round %d: Resume() = %v", round, err)
		}
		if err := v.Resume(); err == nil {
			t.Errorf("round %d: second Resume() = nil, want an error (not paused)", round)
		}
	}
	cancel()
	r := <-done
	if r.err != nil || r.res.Reason != vcpu.StopCanceled {
		t.Errorf("Run() after cancel = %+v, %v, want %v", r.res, r.err, vcpu.StopCanceled)
	}
}
