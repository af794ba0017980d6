package migration

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/machine/machinetest"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// serialLog is a guest's serial output; Rounds counts mode=migrate's 'B's.
type serialLog struct{ *machinetest.Console }

func newSerialLog() *serialLog { return &serialLog{machinetest.NewConsole()} }

// waitRounds waits until the guest has printed n rounds in all, or fails
// t after limit.
func (s *serialLog) waitRounds(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for s.Rounds() < n {
		select {
		case <-s.More():
		case <-deadline.C:
			t.Fatalf("the guest printed %d rounds in %v, want %d; serial:\n%s", s.Rounds(), limit, n, s.String())
		}
	}
}

type guest struct {
	m      *machine.Machine
	serial *serialLog
	done   chan runResult
}

type runResult struct {
	res machine.Result
	err error
}

// run runs m in the background.
func run(t *testing.T, m *machine.Machine, serial *serialLog) *guest {
	t.Helper()
	t.Cleanup(func() { m.Close() })
	g := &guest{m: m, serial: serial, done: make(chan runResult, 1)}
	go func() {
		res, err := m.Run(context.Background())
		g.done <- runResult{res, err}
	}()
	return g
}

func (g *guest) result(t *testing.T, limit time.Duration) runResult {
	t.Helper()
	select {
	case r := <-g.done:
		g.done <- r
		return r
	case <-time.After(limit):
		g.m.Stop()
		t.Fatalf("the guest did not end within %v; serial:\n%s", limit, g.serial.String())
	}
	return runResult{}
}

// migrateStart is where mode=migrate's range begins (migrate.c).
const migrateStart = 0x400000

// checkRounds checks QEMU's a-b invariant on a paused mode=migrate guest
// whose range is mb MiB: the first byte of every page holds the same
// value, or one more in a first stretch of pages (the round under way).
func checkRounds(t *testing.T, mem *memory.Memory, mb int) {
	t.Helper()
	var firsts []byte
	for a := memory.GuestAddr(migrateStart); a < migrateStart+memory.GuestAddr(mb)<<20; a += memory.PageSize {
		var b [1]byte
		if err := mem.ReadAt(b[:], a); err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, b[0])
	}
	hi := firsts[0]
	i := 0
	for i < len(firsts) && firsts[i] == hi {
		i++
	}
	lo := hi - 1
	if i == len(firsts) {
		return // between two rounds
	}
	for j := i; j < len(firsts); j++ {
		if firsts[j] != lo {
			t.Fatalf("page %#x holds %d; pages before %#x hold %d, so it should hold %d", migrateStart+j*memory.PageSize, firsts[j], migrateStart+i*memory.PageSize, hi, lo)
		}
	}
}

func guestELF(t *testing.T) []byte {
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

// source starts the test guest in mode=migrate and waits for its tenth
// round.
func source(t *testing.T, args string) *guest {
	t.Helper()
	serial := newSerialLog()
	m, err := machine.New(machine.Config{KVMPath: kvmtest.Path(), Kernel: guestELF(t), MemSize: 128 << 20, CPUs: 1,
		Cmdline: "mode=migrate rounds=0 " + args, SerialOut: serial})
	if err != nil {
		t.Fatal(err)
	}
	g := run(t, m, serial)
	serial.waitRounds(t, 10, time.Minute)
	return g
}

// destination is the receiving side, run on its own goroutine.
type destination struct {
	ln    net.Listener
	err   chan error // Receive's or Ready's error, nil once it runs
	sum   chan [32]byte
	guest chan *guest
}

func listen(t *testing.T) *destination {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d := &destination{ln: ln, err: make(chan error, 1), sum: make(chan [32]byte, 1), guest: make(chan *guest, 1)}
	go d.serve(t)
	return d
}

func (d *destination) serve(t *testing.T) {
	conn, err := d.ln.Accept()
	if err != nil {
		d.err <- err
		return
	}
	in, err := Receive(conn, func(machine.SavedConfig) error { return nil }, nil)
	if err != nil {
		d.err <- err
		return
	}
	d.sum <- machinetest.RAMSum(in.Restore.Memory)
	serial := newSerialLog()
	c := machine.Config{KVMPath: kvmtest.Path(), SerialOut: serial, Restore: in.Restore}
	c.ApplySaved(in.Restore.State.Config)
	m, err := machine.New(c)
	if err != nil {
		in.Abort(err)
		d.err <- err
		return
	}
	if err := in.Ready(); err != nil {
		m.Close()
		d.err <- err
		return
	}
	g := run(t, m, serial)
	d.err <- in.Running()
	d.guest <- g
}

func dial(t *testing.T, d *destination) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", d.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestMigrateGuest migrates the test guest in mode=migrate (64 MiB, every
// page bumped and checked each round) between two machines over loopback
// TCP: RAM hashes the same on both sides at the hand-over, the source
// stops, and the guest goes on counting on the destination to its last
// round with every page right.
func TestMigrateGuest(t *testing.T) {
	kvmtest.Require(t)
	tests := []struct {
		name          string
		args          string
		o             Options
		wantConverged bool
		wantRounds    int // 0: any
	}{
		// The guest rests between rounds: a round of pre-copy then finds
		// few pages to send again.
		{"converges under the target", "mb=64 delay=1000000", Options{}, true, 0},
		// The guest writes 64 MiB per round, more than the link carries
		// in the target downtime: the bound on rounds ends the rounds.
		// A downtime target only an idle guest meets: with 50 ms, a guest
		// slowed by a loaded host once dirtied little enough to converge.
		{"throttled, bounded by rounds", "mb=64", Options{Bandwidth: 100 << 20, MaxRounds: 3, Downtime: time.Microsecond}, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := source(t, tt.args)
			d := listen(t)
			var seen []Progress
			tt.o.Progress = func(p Progress) { seen = append(seen, p) }
			res, err := Send(context.Background(), src.m, dial(t, d), tt.o)
			if err != nil {
				t.Fatalf("Send() = %v", err)
			}
			t.Logf("%d rounds, %d pages, %.1f MiB sent in %v, downtime %v, converged %v", res.Rounds, res.Pages, float64(res.Sent)/(1<<20), res.Total, res.Downtime, res.Converged)
			if res.Converged != tt.wantConverged || tt.wantRounds > 0 && res.Rounds != tt.wantRounds {
				t.Errorf("Send() rounds %d, converged %v; want %d, %v", res.Rounds, res.Converged, tt.wantRounds, tt.wantConverged)
			}
			if len(seen) < res.Rounds {
				t.Errorf("Progress called %d times for %d rounds", len(seen), res.Rounds)
			}
			if r := src.result(t, time.Minute); r.err != nil || r.res.Reason != vcpu.StopCanceled {
				t.Errorf("source Run() = %+v, %v after the hand-over, want stopped by the VMM", r.res, r.err)
			}
			if want, got := machinetest.RAMSum(src.m.Memory()), <-d.sum; got != want {
				t.Errorf("destination RAM SHA-256 %x, source's at the pause %x", got, want)
			}
			if err := <-d.err; err != nil {
				t.Fatalf("destination: %v", err)
			}
			// The guest counts on here, every page right (it checks each
			// before it bumps it, and stops if one is not).
			dst := <-d.guest
			dst.serial.waitRounds(t, 20, time.Minute)
			if err := dst.m.Pause(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkRounds(t, dst.m.Memory(), 64)
			dst.m.Stop()
			if r := dst.result(t, time.Minute); r.err != nil || r.res.Reason != vcpu.StopCanceled || strings.Contains(dst.serial.String(), "FAILED") {
				t.Errorf("destination Run() = %+v, %v; serial:\n%s", r.res, r.err, dst.serial.String())
			}
		})
	}
}

// TestMigrateCut cuts the connection in each phase, and gives up on a
// guest that writes faster than the link: each time the source's guest
// goes on counting, and the destination ends without running it.
func TestMigrateCut(t *testing.T) {
	kvmtest.Require(t)
	tests := []struct {
		name  string
		cutAt string // testPhase's name; "" to cut nothing
		o     Options
		want  error // errors.Is Send's error; nil: any error
	}{
		{"during the RAM rounds", "round 1", Options{MaxRounds: 5, Downtime: time.Nanosecond}, nil},
		{"while sending the state", "state", Options{}, nil},
		{"before the destination confirmed it is ready", "ready", Options{}, nil},
		{"guest dirties faster than the link, policy cancel", "", Options{Bandwidth: 100 << 20, MaxRounds: 2, Downtime: 10 * time.Millisecond, OnLimit: Cancel}, ErrNotConverged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := source(t, "mb=64")
			d := listen(t)
			conn := dial(t, d)
			testPhase = func(p string) {
				if p == tt.cutAt {
					conn.Close()
				}
			}
			defer func() { testPhase = nil }()
			start := time.Now()
			_, err := Send(context.Background(), src.m, conn, tt.o)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || errors.Is(err, ErrHandedOver) {
				t.Fatalf("Send() = %v, want an error (%v) that leaves the guest here", err, tt.want)
			}
			t.Logf("Send() after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if src.m.Paused() {
				t.Errorf("the source's guest is paused after a failed migration")
			}
			now := src.serial.Rounds()
			src.serial.waitRounds(t, now+5, time.Minute) // still counting here
			select {
			case derr := <-d.err:
				if derr == nil {
					t.Errorf("the destination ran the guest too")
				}
				t.Logf("destination: %v", derr)
			case <-time.After(2 * handoverTimeout):
				t.Errorf("the destination did not give up")
			}
			src.m.Stop()
			if r := src.result(t, time.Minute); r.err != nil {
				t.Errorf("source Run() = %+v, %v", r.res, r.err)
			}
		})
	}
}
