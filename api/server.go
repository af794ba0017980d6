package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/migration"
	"github.com/govmm/govmm/snapshot"
)

// Config is what a Server serves.
type Config struct {
	Machine *machine.Machine
	// SnapshotDirs are the folders snapshots may be written under; a
	// snapshot elsewhere is refused (Landlock would refuse it anyway).
	// Empty refuses every snapshot.
	SnapshotDirs []string
	// Pagemap is /proc/self/pagemap, opened before confinement, for
	// snapshots and migrations of a restored guest.
	Pagemap io.ReaderAt
	// Exits, if set, returns the exit statistics for /v1/metrics.
	Exits func() any
	// Cgroup, if set, returns the usage of the jail's cgroup for
	// /v1/metrics. It runs under the seccomp filter: it may only read
	// descriptors opened before.
	Cgroup func() any
	// Restored names where the guest came from, for /v1/info.
	Restored string
	// Migrated is called once a migration has handed the guest over,
	// before the machine stops, with where it went.
	Migrated func(uri string, r migration.Result)
	// Log receives one line per request that changes the guest.
	Log io.Writer
}

// Server answers the control API for one machine.
type Server struct {
	c    Config
	snap *snapshot.Snapshotter
	http *http.Server
	// op is held by every request that changes the guest's state, so
	// that a resume cannot land in the middle of a snapshot; migrating
	// says a migration holds it, so others are refused at once rather
	// than made to wait for it.
	op        sync.Mutex
	migrating atomic.Bool
	ctx       context.Context // ended by Close: stops a migration
	cancel    context.CancelFunc
}

// NewServer returns a server for c.Machine.
func NewServer(c Config) *Server {
	if c.Log == nil {
		c.Log = io.Discard
	}
	s := &Server{c: c, snap: snapshot.NewSnapshotter(c.Machine, c.Pagemap)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Version+"/info", s.info)
	mux.HandleFunc("POST "+Version+"/pause", s.change(s.pause))
	mux.HandleFunc("POST "+Version+"/resume", s.change(s.resume))
	mux.HandleFunc("POST "+Version+"/snapshot", s.snapshot)
	mux.HandleFunc("POST "+Version+"/power-button", s.change(s.powerButton))
	mux.HandleFunc("POST "+Version+"/stop", s.stop)
	mux.HandleFunc("POST "+Version+"/migrate", s.migrate)
	mux.HandleFunc("GET "+Version+"/metrics", s.metrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, fmt.Errorf("no such path %s %s: the API's paths are under %s/ (info, pause, resume, snapshot, power-button, stop, migrate, metrics)", r.Method, r.URL.Path, Version))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Serve answers on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving, ends a migration under way (the guest stays
// here), and stops tracking written pages.
func (s *Server) Close() error {
	s.cancel()
	// Let the answers under way finish (a migration's last line), a
	// little while.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = s.http.Close()
	}
	return errors.Join(err, s.snap.Close())
}

// statusError is an error with the HTTP status it answers with.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func withStatus(status int, err error) error { return &statusError{status, err} }

// fail writes err as an Error with status.
func fail(w http.ResponseWriter, status int, err error) {
	var se *statusError
	if errors.As(err, &se) {
		status = se.status
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Error{Error: err.Error()})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// busy refuses a change while a migration holds the guest.
var errMigrating = withStatus(http.StatusConflict, errors.New("a migration is under way: wait for it to end (govmm ctl info shows it)"))

// lock takes op for a change, or says why not.
func (s *Server) lock() error {
	if s.migrating.Load() {
		return errMigrating
	}
	s.op.Lock()
	if s.migrating.Load() { // it started while we waited
		s.op.Unlock()
		return errMigrating
	}
	return nil
}

// change wraps a handler that changes the guest: one at a time, none
// during a migration, answering Info.
func (s *Server) change(f func(r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.lock(); err != nil {
			fail(w, http.StatusConflict, err)
			return
		}
		err := f(r)
		s.op.Unlock()
		if err != nil {
			fail(w, http.StatusInternalServerError, err)
			return
		}
		fmt.Fprintf(s.c.Log, "govmm: api: %s\n", strings.TrimPrefix(r.URL.Path, Version+"/"))
		reply(w, s.infoNow())
	}
}

func (s *Server) infoNow() Info {
	m := s.c.Machine
	sc := m.SavedConfig()
	in := Info{
		State: StateRunning, VCPUs: sc.CPUs, MemoryBytes: sc.MemSize, Host: m.Host().String(),
		Govmm: snapshot.Version(), Uptime: time.Since(m.Started()).Round(time.Millisecond).String(),
		Restored: s.c.Restored, Migrating: s.migrating.Load(),
	}
	for _, d := range sc.Devices {
		in.Devices = append(in.Devices, string(d))
	}
	switch {
	case m.Stopping():
		in.State = StateStopping
	case m.Paused():
		in.State = StatePaused
	}
	return in
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) { reply(w, s.infoNow()) }

func (s *Server) pause(r *http.Request) error {
	err := s.c.Machine.Pause(r.Context())
	if errors.Is(err, machine.ErrPaused) {
		return withStatus(http.StatusConflict, err)
	}
	return err
}

func (s *Server) resume(*http.Request) error {
	err := s.c.Machine.Resume()
	if errors.Is(err, machine.ErrNotPaused) {
		return withStatus(http.StatusConflict, err)
	}
	return err
}

func (s *Server) powerButton(*http.Request) error {
	if s.c.Machine.Paused() {
		return withStatus(http.StatusConflict, errors.New("the guest is paused and would not see the button until resumed: resume it first"))
	}
	s.c.Machine.PowerButton()
	return nil
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	// Stop is allowed during a migration: it ends it, and the guest.
	s.cancel()
	s.c.Machine.Stop()
	fmt.Fprintf(s.c.Log, "govmm: api: stop\n")
	reply(w, s.infoNow())
}

// decode reads a JSON request body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return withStatus(http.StatusBadRequest, fmt.Errorf("the request body is not the JSON this path takes: %w", err))
	}
	return nil
}

// snapshotDir checks dir is absolute and under one of SnapshotDirs.
func (s *Server) snapshotDir(dir string) (string, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return "", withStatus(http.StatusBadRequest, fmt.Errorf("snapshot folder %q: give an absolute path", dir))
	}
	dir = filepath.Clean(dir)
	for _, root := range s.c.SnapshotDirs {
		if rel, err := filepath.Rel(filepath.Clean(root), dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return dir, nil
		}
	}
	if len(s.c.SnapshotDirs) == 0 {
		return "", withStatus(http.StatusBadRequest, fmt.Errorf("snapshot folder %s: this govmm was started without -snapshot-dir, so it may write snapshots nowhere: start it with -snapshot-dir DIR and snapshot into DIR or a folder in it", dir))
	}
	return "", withStatus(http.StatusBadRequest, fmt.Errorf("snapshot folder %s is not in %s, the folders this govmm may write snapshots to (-snapshot-dir)", dir, strings.Join(s.c.SnapshotDirs, ", ")))
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	var req SnapshotRequest
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	dir, err := s.snapshotDir(req.Dir)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	if err := s.lock(); err != nil {
		fail(w, http.StatusConflict, err)
		return
	}
	res, err := s.snap.Save(r.Context(), dir, snapshot.Options{Diff: req.Diff, Track: req.Track})
	s.op.Unlock()
	if err != nil {
		fail(w, http.StatusInternalServerError, err)
		return
	}
	fmt.Fprintf(s.c.Log, "govmm: api: snapshot %s: %d pages, guest paused %v\n", res.Dir, res.Pages, res.Paused.Round(time.Microsecond))
	reply(w, SnapshotResult{Dir: res.Dir, Pages: res.Pages, MemoryBytes: res.MemoryBytes, StateBytes: res.StateBytes, Paused: res.Paused, Base: res.Base})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	mt := Metrics{Machine: s.c.Machine.Metrics()}
	if s.c.Exits != nil {
		mt.Exits = s.c.Exits()
	}
	if s.c.Cgroup != nil {
		mt.Cgroup = s.c.Cgroup()
	}
	reply(w, mt)
}

// ParseTCP reads a migration URI, "tcp:HOST:PORT", and returns HOST:PORT.
func ParseTCP(uri string) (string, error) {
	addr, ok := strings.CutPrefix(uri, "tcp:")
	if !ok {
		return "", fmt.Errorf("migration address %q: give tcp:HOST:PORT", uri)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("migration address %q: give tcp:HOST:PORT: %w", uri, err)
	}
	return addr, nil
}

func (s *Server) migrate(w http.ResponseWriter, r *http.Request) {
	var req MigrateRequest
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	addr, err := ParseTCP(req.URI)
	if err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	o := migration.Options{Downtime: req.Downtime, Bandwidth: req.Bandwidth, MaxRounds: req.MaxRounds, MaxTime: req.MaxTime, Pagemap: s.c.Pagemap}
	if req.OnLimit != "" {
		if o.OnLimit, err = migration.ParsePolicy(req.OnLimit); err != nil {
			fail(w, http.StatusBadRequest, err)
			return
		}
	}
	if err := s.lock(); err != nil {
		fail(w, http.StatusConflict, err)
		return
	}
	s.migrating.Store(true)
	defer func() {
		s.migrating.Store(false)
		s.op.Unlock()
	}()
	if s.c.Machine.Paused() {
		fail(w, http.StatusConflict, errors.New("the guest is paused: resume it first (a migration pauses it itself, at the end)"))
		return
	}
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(r.Context(), "tcp", addr)
	if err != nil {
		fail(w, http.StatusBadGateway, fmt.Errorf("connecting to the destination %s: %w (is govmm -incoming %s waiting there?)", addr, err, req.URI))
		return
	}
	// From here the answer is a stream of events, one JSON object a line.
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	o.Progress = func(p migration.Progress) {
		enc.Encode(MigrateEvent{Progress: &MigrateProgress{
			Phase: string(p.Phase), Round: p.Round, SentBytes: p.Sent, Pages: p.Pages, Dirty: p.Dirty,
			DirtyRate: p.DirtyRate, Bandwidth: p.Bandwidth, Downtime: p.Downtime, Elapsed: p.Elapsed,
		}})
		flush()
	}
	o.HandedOver = func(res migration.Result) {
		if s.c.Migrated != nil {
			s.c.Migrated(req.URI, res)
		}
	}
	// The migration goes on if the client goes away; Close (govmm
	// exiting) or stop ends it.
	fmt.Fprintf(s.c.Log, "govmm: api: migrating to %s\n", req.URI)
	res, err := migration.Send(s.ctx, s.c.Machine, conn, o)
	if err != nil {
		fmt.Fprintf(s.c.Log, "govmm: api: %v\n", err)
		enc.Encode(MigrateEvent{Error: err.Error()})
		return
	}
	enc.Encode(MigrateEvent{Result: &MigrateResult{Rounds: res.Rounds, Total: res.Total, Downtime: res.Downtime, SentBytes: res.Sent, Pages: res.Pages, Converged: res.Converged}})
	flush()
}
