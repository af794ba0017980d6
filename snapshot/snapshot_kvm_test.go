package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// serialLog is a guest's serial output, safe to read while it runs, that
// wakes whoever waits for a number of 'B's (rounds of mode=migrate).
type serialLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	waiters []waiter
}

type waiter struct {
	n  int
	ch chan struct{}
}

func (s *serialLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	n := s.roundsLocked()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if n >= w.n {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	s.waiters = kept
	return len(p), nil
}

func (s *serialLog) roundsLocked() int { return bytes.Count(s.buf.Bytes(), []byte("B")) }

func (s *serialLog) rounds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roundsLocked()
}

// atLeast returns a channel closed once the guest has printed n rounds.
func (s *serialLog) atLeast(n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.roundsLocked() >= n {
		close(ch)
		return ch
	}
	s.waiters = append(s.waiters, waiter{n, ch})
	return ch
}

func (s *serialLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// migrateGuest returns the test guest's ELF, or ends t.
func migrateGuest(t *testing.T) []byte {
	t.Helper()
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatalf("building the test guests: %v", err)
	}
	elf, err := os.ReadFile(g.ELF)
	if err != nil {
		t.Fatal(err)
	}
	return elf
}

// running is a machine whose Run goes on in the background.
type running struct {
	m      *machine.Machine
	serial *serialLog
	done   chan runResult
}

type runResult struct {
	res machine.Result
	err error
}

func start(t *testing.T, c machine.Config) *running {
	t.Helper()
	serial := &serialLog{}
	c.KVMPath, c.SerialOut = kvmtest.Path(), serial
	m, err := machine.New(c)
	if err != nil {
		t.Fatalf("machine.New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	r := &running{m: m, serial: serial, done: make(chan runResult, 1)}
	go func() {
		res, err := m.Run(context.Background())
		r.done <- runResult{res, err}
	}()
	return r
}

// wait waits for n rounds, failing t if the guest ends first or takes
// longer than limit.
func (r *running) wait(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	select {
	case <-r.serial.atLeast(n):
	case res := <-r.done:
		r.done <- res
		t.Fatalf("the guest ended (%+v, %v) before round %d; serial:\n%s", res.res, res.err, n, r.serial.String())
	case <-time.After(limit):
		t.Fatalf("no round %d after %v; serial:\n%s", n, limit, r.serial.String())
	}
}

// end waits for the guest to end and checks it passed its checks.
func (r *running) end(t *testing.T, rounds int, limit time.Duration) {
	t.Helper()
	select {
	case res := <-r.done:
		if res.err != nil || res.res.Status != 0 || !res.res.DebugExit {
			t.Fatalf("Run() = %+v, %v, want status 0 from the guest; serial:\n%s", res.res, res.err, r.serial.String())
		}
	case <-time.After(limit):
		r.m.Stop()
		t.Fatalf("the guest did not end within %v; serial:\n%s", limit, r.serial.String())
	}
	if want := fmt.Sprintf("migrate ok rounds=%d", rounds); !strings.Contains(r.serial.String(), want) {
		t.Errorf("serial output lacks %q:\n%s", want, r.serial.String())
	}
}

const migrateRounds = 400

func migrateConfig(t *testing.T) machine.Config {
	return machine.Config{
		Kernel: migrateGuest(t), MemSize: 128 << 20, CPUs: 1,
		Cmdline: fmt.Sprintf("mode=migrate rounds=%d mb=64", migrateRounds),
	}
}

// TestSnapshotRestoreGuest snapshots the test guest while it runs
// mode=migrate (every page of 64 MiB bumped each round and checked), then
// restores the snapshot twice in this process and once in a fresh
// process: each clone goes on from the round it was saved in and ends
// with every page right, as does the original.
func TestSnapshotRestoreGuest(t *testing.T) {
	kvmtest.Require(t)
	c := migrateConfig(t)
	src := start(t, c)
	src.wait(t, 20, time.Minute)
	dir := t.TempDir()
	res, err := NewSnapshotter(src.m, nil).Save(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	saved := src.serial.rounds()
	t.Logf("snapshot at round ~%d: %d pages, %d-byte state, guest paused %v", saved, res.Pages, res.StateBytes, res.Paused)
	src.end(t, migrateRounds, time.Minute)

	for clone := range 2 {
		restore, f, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if f.Memory.Pages != res.Pages {
			t.Errorf("clone %d: the state file says %d pages, Save wrote %d", clone, f.Memory.Pages, res.Pages)
		}
		c := machine.Config{Restore: restore}
		c.ApplySaved(f.Machine.Config)
		dst := start(t, c)
		dst.end(t, migrateRounds, time.Minute)
		if got := dst.serial.rounds(); got < migrateRounds-saved-1 || got > migrateRounds {
			t.Errorf("clone %d printed %d rounds after the snapshot at about %d of %d", clone, got, saved, migrateRounds)
		}
	}

	// A fresh process: nothing of this one's KVM objects or memory.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreInFreshProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "GOVMM_TEST_RESTORE_DIR="+dir, fmt.Sprintf("GOVMM_TEST_RESTORE_ROUNDS=%d", migrateRounds))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRestoreInFreshProcess") {
		t.Errorf("restoring in a fresh process: %v\n%s", err, out)
	}
}

// TestRestoreInFreshProcess is TestSnapshotRestoreGuest's child: it
// restores the snapshot in $GOVMM_TEST_RESTORE_DIR and runs it to its end.
func TestRestoreInFreshProcess(t *testing.T) {
	dir := os.Getenv("GOVMM_TEST_RESTORE_DIR")
	if dir == "" {
		t.Skip("run by TestSnapshotRestoreGuest")
	}
	restore, f, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := machine.Config{Restore: restore}
	c.ApplySaved(f.Machine.Config)
	dst := start(t, c)
	var rounds int
	fmt.Sscan(os.Getenv("GOVMM_TEST_RESTORE_ROUNDS"), &rounds)
	dst.end(t, rounds, time.Minute)
	if st := dst.m.VCPUs()[0].RunState(); st != vcpu.Stopped {
		t.Errorf("vCPU state after the end = %v", st)
	}
}

var _ = filepath.Join
