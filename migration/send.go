package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/snapshot"
)

// Policy is what the source does when the rounds do not converge within
// Options' bounds.
type Policy int

const (
	// Finish pauses the guest and sends what is left, however long the
	// downtime (QEMU's behaviour with a raised downtime limit).
	Finish Policy = iota
	// Cancel gives up: the guest goes on running on the source.
	Cancel
)

// ParsePolicy reads "finish" or "cancel".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "finish":
		return Finish, nil
	case "cancel":
		return Cancel, nil
	}
	return 0, fmt.Errorf("policy %q: give finish (pause and send the rest) or cancel (give up, the guest goes on here)", s)
}

func (p Policy) String() string {
	if p == Cancel {
		return "cancel"
	}
	return "finish"
}

// Defaults of Options.
const (
	DefaultDowntime  = 300 * time.Millisecond
	DefaultMaxRounds = 30
	DefaultMaxTime   = 5 * time.Minute
	// handoverTimeout bounds each wait for the destination's answers
	// (building the machine, then starting it).
	handoverTimeout = time.Minute
)

// Options tune a migration. Zero values take the defaults.
type Options struct {
	// Downtime is the target: the rounds end when the pages left would
	// take less than this to send at the bandwidth measured.
	Downtime time.Duration
	// Bandwidth caps the rate the source sends at, in bytes per second;
	// 0 for no cap.
	Bandwidth int64
	// MaxRounds and MaxTime bound the live rounds; OnLimit says what
	// happens then.
	MaxRounds int
	MaxTime   time.Duration
	OnLimit   Policy
	// Progress, if set, is called after each round and phase.
	Progress func(Progress)
	// Pagemap is /proc/self/pagemap, for the first round of a restored
	// guest (memory.DataPages); nil sends every page of such a guest.
	Pagemap io.ReaderAt
	// HandedOver, if set, is called once the destination runs the guest,
	// before the source's machine is stopped.
	HandedOver func(Result)
}

func (o *Options) defaults() {
	if o.Downtime <= 0 {
		o.Downtime = DefaultDowntime
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = DefaultMaxRounds
	}
	if o.MaxTime <= 0 {
		o.MaxTime = DefaultMaxTime
	}
}

// Phase is where a migration is.
type Phase string

// The phases, in order.
const (
	PhaseRAM      Phase = "ram"      // a live round
	PhaseFinal    Phase = "final"    // paused: the last pages and the state
	PhaseHandover Phase = "handover" // waiting for the destination
	PhaseDone     Phase = "done"
)

// Progress is a migration's state after a round or phase.
type Progress struct {
	Phase Phase
	Round int
	// Sent is the bytes sent so far; Pages the pages among them.
	Sent  int64
	Pages int64
	// Dirty is how many pages the guest wrote during the last round,
	// DirtyRate that per second, in bytes.
	Dirty     int
	DirtyRate float64
	// Bandwidth is the rate measured over the last round, bytes per second.
	Bandwidth float64
	// Downtime is what sending the dirty pages would take at Bandwidth.
	Downtime time.Duration
	Elapsed  time.Duration
}

// Result is how a migration went.
type Result struct {
	Rounds    int           // live rounds, the first (all of RAM) included
	Total     time.Duration // from the start to the destination's confirmation
	Downtime  time.Duration // from the pause to the destination's confirmation
	Sent      int64         // bytes
	Pages     int64         // pages sent, zero pages included
	Converged bool          // false when a bound ended the rounds (OnLimit Finish)
}

// ErrNotConverged is wrapped by Send's error when OnLimit is Cancel and a
// bound was reached.
var ErrNotConverged = errors.New("migration did not converge")

// ErrHandedOver is wrapped by Send's error when the connection failed
// after the source told the destination to run the guest: the source
// cannot know whether it does, and keeps the guest paused rather than
// risk it running twice.
var ErrHandedOver = errors.New("the destination was told to run the guest")

// testPhase, when set by a test, is called as each phase begins
// ("round N", "state", "ready", "running"), on the sending goroutine.
var testPhase func(string)

func phase(name string) {
	if testPhase != nil {
		testPhase(name)
	}
}

// Send migrates m's guest over conn, which it closes. On success the
// guest runs on the destination and m is stopped (its Run returns
// StopCanceled). On any failure before the hand-over the guest runs on as
// before, here: the dirty log is closed and a paused guest resumed.
func Send(ctx context.Context, m *machine.Machine, conn net.Conn, o Options) (res Result, err error) {
	o.defaults()
	defer conn.Close()
	s := &sender{m: m, mem: m.Memory(), o: o, start: time.Now()}
	s.tw = &throttle{w: conn, rate: o.Bandwidth, ctx: ctx}
	s.rw = &recordWriter{w: s.tw}
	// A canceled ctx must unblock a write or read in progress.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	res, err = s.run(ctx, conn)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return res, err
}

type sender struct {
	m     *machine.Machine
	mem   *memory.Memory
	o     Options
	tw    *throttle
	rw    *recordWriter
	start time.Time
	res   Result
	buf   []byte // page data copied out of RAM before its checksum
}

func (s *sender) run(ctx context.Context, conn net.Conn) (Result, error) {
	if err := writeHeader(s.tw, snapshot.Version()); err != nil {
		return s.res, fmt.Errorf("migration: sending the header: %w", err)
	}
	st := s.m.SavedConfig()
	cfg, err := json.Marshal(st)
	if err != nil {
		return s.res, err
	}
	if err := s.rw.write(RecConfig, cfg); err != nil {
		return s.res, fmt.Errorf("migration: sending the configuration: %w", err)
	}
	log, err := s.m.StartDirtyLog()
	if err != nil {
		return s.res, fmt.Errorf("migration: %w", err)
	}
	defer log.Close()
	pages, err := s.mem.DataPages(s.o.Pagemap)
	if err != nil {
		return s.res, fmt.Errorf("migration: %w", err)
	}
	// The live rounds: all of RAM that holds data, then what the guest
	// wrote meanwhile, until it is small enough.
	converged := false
	for round := 0; ; round++ {
		phase(fmt.Sprintf("round %d", round))
		t0, sent0 := time.Now(), s.tw.sent
		n, err := s.sendPages(pages, round == 0)
		if err != nil {
			return s.res, fmt.Errorf("migration: round %d: %w", round, err)
		}
		if err := s.rw.write(RecRoundEnd, roundEndPayload(RoundEnd{Round: uint32(round), Pages: uint64(n)})); err != nil {
			return s.res, fmt.Errorf("migration: round %d: %w", round, err)
		}
		s.res.Rounds = round + 1
		took := time.Since(t0)
		if pages, err = log.Collect(); err != nil {
			return s.res, fmt.Errorf("migration: %w", err)
		}
		p := s.progress(PhaseRAM, round, pages.Count(), s.tw.sent-sent0, took)
		if p.Downtime <= s.o.Downtime {
			converged = true
			break
		}
		if s.res.Rounds >= s.o.MaxRounds || time.Since(s.start) >= s.o.MaxTime {
			if s.o.OnLimit == Cancel {
				err := fmt.Errorf("%w: after %d rounds in %v the guest still writes %d pages a round (%.0f MB/s; the link moves %.0f MB/s), more than %v of downtime; the guest goes on here (use -on-limit finish to pause it and send the rest)",
					ErrNotConverged, s.res.Rounds, time.Since(s.start).Round(time.Millisecond), pages.Count(), p.DirtyRate/1e6, p.Bandwidth/1e6, s.o.Downtime)
				s.abort(err.Error())
				return s.res, err
			}
			break
		}
	}
	s.res.Converged = converged
	return s.finish(ctx, conn, log, pages)
}

// progress reports a round: dirty pages written while it sent bytes in
// took.
func (s *sender) progress(ph Phase, round, dirty int, bytes int64, took time.Duration) Progress {
	secs := max(took.Seconds(), 1e-6)
	p := Progress{Phase: ph, Round: round, Sent: s.tw.sent, Pages: s.res.Pages, Dirty: dirty,
		DirtyRate: float64(dirty) * pageSize / secs, Bandwidth: float64(bytes) / secs, Elapsed: time.Since(s.start)}
	if p.Bandwidth > 0 {
		p.Downtime = time.Duration(float64(dirty) * (pageSize + 32) / p.Bandwidth * float64(time.Second))
	}
	if s.o.Progress != nil {
		s.o.Progress(p)
	}
	return p
}

// sendPages sends the pages set in b, in records of up to
// PagesPerRecord; the first round leaves out zero pages (the
// destination's RAM starts zeroed), later rounds send them as zero
// records. It returns how many pages it sent.
func (s *sender) sendPages(b *memory.Bitmap, first bool) (int, error) {
	sent := 0
	err := s.mem.RegionRuns(b, PagesPerRecord, func(page int, host []byte) error {
		// Copy first: the guest may write a page while it is sent (the
		// dirty log sends it again), and the checksum must match what
		// goes out.
		if cap(s.buf) < len(host) {
			s.buf = make([]byte, PagesPerRecord*pageSize)
		}
		data := s.buf[:len(host)]
		copy(data, host)
		return runsByZero(data, func(off, n int, zero bool) error {
			k := n / pageSize
			var err error
			switch {
			case zero && first:
				return nil
			case zero:
				err = s.rw.pages(uint64(page+off/pageSize), k, nil)
			default:
				err = s.rw.pages(uint64(page+off/pageSize), k, data[off:off+n])
			}
			sent += k
			s.res.Pages += int64(k)
			return err
		})
	})
	return sent, err
}

// runsByZero calls f for each stretch of data's pages that are all zero
// pages or all not.
func runsByZero(data []byte, f func(off, n int, zero bool) error) error {
	start, zero := 0, false
	for off := 0; off < len(data); off += pageSize {
		z := isZero(data[off : off+pageSize])
		if off > start && z != zero {
			if err := f(start, off-start, zero); err != nil {
				return err
			}
			start = off
		}
		zero = z
	}
	if len(data) > start {
		return f(start, len(data)-start, zero)
	}
	return nil
}

func isZero(page []byte) bool {
	for _, b := range page {
		if b != 0 {
			return false
		}
	}
	return true
}

// abort tells the destination why the source gives up, if it still can.
func (s *sender) abort(why string) {
	_ = s.rw.write(RecAbort, []byte(why)) // the connection may be what failed
}

// finish pauses the guest, sends what is left and the state, and hands
// over. Before RecGo is sent a failure resumes the guest here.
// pending are the pages the last round's guest wrote, not sent yet.
func (s *sender) finish(ctx context.Context, conn net.Conn, log *machine.DirtyLog, pending *memory.Bitmap) (Result, error) {
	phase("pause")
	if err := s.m.Pause(ctx); err != nil {
		s.abort(err.Error())
		return s.res, fmt.Errorf("migration: %w", err)
	}
	paused := time.Now()
	resume := func(err error) (Result, error) {
		s.abort(err.Error())
		if rerr := s.m.Resume(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return s.res, fmt.Errorf("migration failed, the guest goes on here: %w", err)
	}
	t0, sent0 := time.Now(), s.tw.sent
	pages, err := log.Collect()
	if err != nil {
		return resume(err)
	}
	pages.Or(pending)
	if _, err := s.sendPages(pages, false); err != nil {
		return resume(fmt.Errorf("sending the last %d pages: %w", pages.Count(), err))
	}
	phase("state")
	st, err := s.m.SaveState()
	if err != nil {
		return resume(err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return resume(err)
	}
	if err := s.rw.write(RecState, data); err != nil {
		return resume(fmt.Errorf("sending the state: %w", err))
	}
	if err := s.rw.write(RecEnd); err != nil {
		return resume(fmt.Errorf("sending the end: %w", err))
	}
	s.progress(PhaseFinal, s.res.Rounds, pages.Count(), s.tw.sent-sent0, time.Since(t0))
	phase("ready")
	rr := newRecordReader(conn)
	if err := expect(conn, rr, RecReady); err != nil {
		return resume(fmt.Errorf("waiting for the destination to build the machine: %w", err))
	}
	phase("go")
	if err := s.rw.write(RecGo); err != nil {
		// The destination may have received it.
		return s.res, fmt.Errorf("migration: %w: sending it failed (%v), so the guest stays paused here; if the destination does not run it, run govmm ctl resume here", ErrHandedOver, err)
	}
	phase("running")
	if err := expect(conn, rr, RecRunning); err != nil {
		return s.res, fmt.Errorf("migration: %w, and then: %v; the guest stays paused here: if the destination does not run it, run govmm ctl resume here", ErrHandedOver, err)
	}
	s.res.Downtime = time.Since(paused)
	s.res.Total = time.Since(s.start)
	s.res.Sent = s.tw.sent
	if s.o.Progress != nil {
		s.o.Progress(Progress{Phase: PhaseDone, Round: s.res.Rounds, Sent: s.tw.sent, Pages: s.res.Pages, Downtime: s.res.Downtime, Elapsed: s.res.Total})
	}
	if s.o.HandedOver != nil {
		s.o.HandedOver(s.res)
	}
	s.m.Stop()
	return s.res, nil
}

// expect reads the next record, within handoverTimeout, and wants it of
// type t; a RecAbort's message becomes the error.
func expect(conn net.Conn, rr *recordReader, t RecordType) error {
	if err := conn.SetReadDeadline(time.Now().Add(handoverTimeout)); err != nil {
		return err
	}
	rec, err := rr.read()
	if err != nil {
		return fmt.Errorf("reading the destination's %v: %w", t, err)
	}
	switch rec.Type {
	case t:
		return nil
	case RecAbort:
		return fmt.Errorf("the destination gave up: %s", rec.Payload)
	}
	return streamErr("the destination sent %v, want %v", rec.Type, t)
}

// throttle counts the bytes written and, with a rate, spaces writes so
// that they do not go faster.
type throttle struct {
	w     io.Writer
	rate  int64 // bytes per second, 0 for no cap
	ctx   context.Context
	sent  int64
	start time.Time
}

func (t *throttle) Write(p []byte) (int, error) {
	if t.start.IsZero() {
		t.start = time.Now()
	}
	n, err := t.w.Write(p)
	t.sent += int64(n)
	if err != nil || t.rate <= 0 {
		return n, err
	}
	// Sleep until the bytes sent so far are due at rate: a rate limit,
	// not a wait for an event.
	due := t.start.Add(time.Duration(float64(t.sent) / float64(t.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			return n, context.Cause(t.ctx)
		}
	}
	return n, nil
}
