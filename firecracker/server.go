package firecracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// VMConfig is the microVM as configured before it starts: what
// InstanceStart builds.
type VMConfig struct {
	Machine    MachineConfig
	BootSource *BootSource
	// Drives in the order the guest sees them: the root device first,
	// the others in the order they were first put.
	Drives []Drive
	Nets   []NetworkInterface
}

// VMM runs the guest for a Server. Its methods are called one at a time,
// each only in the state that allows it.
type VMM interface {
	// Start builds the guest from c and starts it; it returns once the
	// guest runs (the first instruction may be just ahead).
	Start(ctx context.Context, c VMConfig) error
	// Load builds the guest from a snapshot, paused; then Resume runs it.
	// It returns the machine configuration the snapshot holds.
	Load(ctx context.Context, l SnapshotLoad) (MachineConfig, error)
	Pause(ctx context.Context) error
	Resume() error
	// CtrlAltDel asks the guest to shut down; an error when it has ended.
	CtrlAltDel() error
	// UpdateDrive points drive id at path (the same or another file),
	// reads its size again and tells the guest its configuration changed.
	UpdateDrive(ctx context.Context, id, path string) error
	// Snapshot writes the paused guest to two files.
	Snapshot(ctx context.Context, s SnapshotCreate) error
	// Metrics are the VMM's counters, for the metrics file.
	Metrics() any
}

// Config is what a Server needs.
type Config struct {
	ID  string // the instance ID (--id); DefaultID when empty
	VMM VMM
	// AllowedDirs, when set, are the only folders whose files requests
	// may name (kernel, initrd, drives, logger, metrics, snapshots).
	AllowedDirs []string
	// Log receives govmm's own lines about the API (one per request that
	// failed); nil discards them.
	Log io.Writer
}

// Server answers Firecracker's API for one microVM.
type Server struct {
	c Config

	mu         sync.Mutex // one request at a time, as Firecracker's
	state      State
	cfg        VMConfig
	configured bool // a boot resource was set: /snapshot/load is refused
	logger     *output
	metrics    *output
	stats      apiStats
	http       *http.Server
	done       chan struct{}
	closeOnce  sync.Once
}

// apiStats are the API's counters in the metrics file.
type apiStats struct {
	Requests     uint64 `json:"requests"`
	Failed       uint64 `json:"failed"`
	LoggerLines  uint64 `json:"logger_lines"`
	LoggerMissed uint64 `json:"logger_missed"`
}

// NewServer returns a server for a microVM not yet started, with
// Firecracker's default machine: 1 vCPU, 128 MiB.
func NewServer(c Config) *Server {
	if c.ID == "" {
		c.ID = DefaultID
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	s := &Server{c: c, state: NotStarted, cfg: VMConfig{Machine: MachineConfig{VCPUCount: 1, MemSizeMiB: 128}}, done: make(chan struct{})}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// State is the microVM's state now.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Serve answers on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving and closes the logger and metrics files, after
// one last metrics line.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err = s.http.Shutdown(ctx); err != nil {
			err = s.http.Close()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.metrics != nil {
			s.flushMetricsLocked()
			s.metrics.close()
		}
		if s.logger != nil {
			s.logger.close()
		}
	})
	return err
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		writeFault(w, fmt.Errorf("reading the request body: %w", err))
		return
	}
	// A client that gives up (the SDK waits 500 ms) must not cut a start
	// or a snapshot short: the request runs to its end.
	status, out := s.Handle(context.WithoutCancel(r.Context()), r.Method, r.URL.Path, body)
	switch {
	case status == http.StatusNoContent:
		w.WriteHeader(status)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(out)
	}
}

func writeFault(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(faultBody(err))
}

func faultBody(err error) []byte {
	b, _ := json.Marshal(Fault{FaultMessage: err.Error()}) // a struct of one string always marshals
	return b
}

// Handle answers one request: 204 and no body for a change, 200 and JSON
// for a read, 400 and a Fault for every error.
func (s *Server) Handle(ctx context.Context, method, path string, body []byte) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	out, err := s.handleLocked(ctx, method, path, body)
	if err != nil {
		s.stats.Failed++
		s.logf("warning", "%s %s: %v", method, path, err)
		fmt.Fprintf(s.c.Log, "govmm: firecracker API: %s %s: %v\n", method, path, err)
		return http.StatusBadRequest, faultBody(err)
	}
	if out == nil {
		s.logf("info", "%s %s: done", method, path)
		return http.StatusNoContent, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return http.StatusBadRequest, faultBody(err)
	}
	return http.StatusOK, b
}

// handleLocked does the request; nil and no error is 204.
func (s *Server) handleLocked(ctx context.Context, method, path string, body []byte) (any, error) {
	r, err := ParseRequest(method, path, body)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case GetInstanceInfo:
		return InstanceInfo{AppName: AppName, ID: s.c.ID, State: s.state, Started: s.state != NotStarted, VMMVersion: Version}, nil
	case GetVersion:
		return VersionInfo{FirecrackerVersion: Version}, nil
	case GetMachineConfig:
		return s.cfg.Machine, nil
	case GetVMConfig:
		return s.fileConfigLocked(), nil
	case PutAction:
		return nil, s.action(ctx, r.Action.ActionType)
	}
	if pre := preBoot(r.Kind); pre != (s.state == NotStarted) {
		if pre {
			return nil, &Error{msgPostBoot}
		}
		return nil, &Error{msgPreBoot}
	}
	switch r.Kind {
	case PutMachineConfig:
		s.cfg.Machine = MachineConfig{VCPUCount: 1, MemSizeMiB: 128}
		fallthrough
	case PatchMachineConfig:
		return nil, s.machineConfig(r.MachineConfig)
	case PutBootSource:
		return nil, s.bootSource(r.BootSource)
	case PutDrive:
		return nil, s.putDrive(r.Drive)
	case PatchDrive:
		return nil, s.patchDrive(ctx, r.PartialDrive)
	case PutNetworkInterface:
		return nil, s.putNet(r.Net)
	case PatchNetworkInterface:
		if !slices.ContainsFunc(s.cfg.Nets, func(n NetworkInterface) bool { return n.IfaceID == r.PartialNet.IfaceID }) {
			return nil, faultf("Invalid request method and/or path: no network interface %q was configured.", r.PartialNet.IfaceID)
		}
		return nil, nil // only rate limiters may change, and none are given
	case PutLogger:
		return nil, s.putLogger(r.Logger)
	case PutMetrics:
		return nil, s.putMetrics(r.Metrics)
	case PatchVM:
		return nil, s.patchVM(ctx, r.VM.State)
	case PutSnapshotCreate:
		return nil, s.snapshotCreate(ctx, r.SnapshotCreate)
	case PutSnapshotLoad:
		return nil, s.snapshotLoad(ctx, r.SnapshotLoad)
	}
	return nil, faultf("request kind %d has no handler", r.Kind) // ParseRequest returns only the kinds above
}

// preBoot says whether a change is allowed only before the microVM
// starts (true) or only after (false).
func preBoot(k Kind) bool {
	switch k {
	case PatchDrive, PatchNetworkInterface, PatchVM, PutSnapshotCreate:
		return false
	}
	return true
}

func (s *Server) machineConfig(b machineConfigBody) error {
	m := s.cfg.Machine
	if b.VCPUCount != nil {
		m.VCPUCount = *b.VCPUCount
	}
	if b.MemSizeMiB != nil {
		m.MemSizeMiB = *b.MemSizeMiB
	}
	if b.SMT != nil {
		m.SMT = *b.SMT
	}
	if b.TrackDirtyPages != nil {
		m.TrackDirtyPages = *b.TrackDirtyPages
	}
	if m.SMT {
		return faultf("smt: simultaneous multithreading is not implemented in govmm (each vCPU is a core of its own); give smt false")
	}
	s.cfg.Machine = m
	s.configured = true
	return nil
}

// checkPath checks that a file a request names is in an allowed folder
// and, with kinds, that it exists and is of one of those kinds.
func (s *Server) checkPath(field, path string, kinds ...os.FileMode) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return faultf("%s %s: %v", field, path, err)
	}
	if len(s.c.AllowedDirs) > 0 {
		in := false
		for _, d := range s.c.AllowedDirs {
			if rel, err := filepath.Rel(d, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				in = true
			}
		}
		// A symlink inside may point outside: its target must be in too.
		if real, err := filepath.EvalSymlinks(abs); in && err == nil && real != abs {
			return s.checkPath(field, real, kinds...)
		}
		if !in {
			return faultf("%s %s is outside the folders this govmm may use (%s): put the file there", field, path, strings.Join(s.c.AllowedDirs, ", "))
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	st, err := os.Stat(abs)
	if err != nil {
		return faultf("%s %s: %v", field, path, err)
	}
	for _, k := range kinds {
		if st.Mode().Type() == k {
			return nil
		}
	}
	return faultf("%s %s is not a regular file or a block device", field, path)
}

// Kinds of file checkPath accepts.
const (
	regular  = os.FileMode(0)
	blockDev = os.ModeDevice
)

func (s *Server) bootSource(b BootSource) error {
	if err := s.checkPath("kernel_image_path", b.KernelImagePath, regular); err != nil {
		return err
	}
	if b.InitrdPath != "" {
		if err := s.checkPath("initrd_path", b.InitrdPath, regular); err != nil {
			return err
		}
	}
	s.cfg.BootSource = &b
	s.configured = true
	return nil
}

func (s *Server) putDrive(d Drive) error {
	if err := s.checkPath("path_on_host", d.PathOnHost, regular, blockDev); err != nil {
		return err
	}
	drives := slices.Clone(s.cfg.Drives)
	i := slices.IndexFunc(drives, func(x Drive) bool { return x.DriveID == d.DriveID })
	if d.IsRootDevice && slices.ContainsFunc(drives, func(x Drive) bool { return x.IsRootDevice && x.DriveID != d.DriveID }) {
		return faultf("A root block device already exists!")
	}
	if i >= 0 {
		drives = slices.Delete(drives, i, i+1)
	}
	if d.IsRootDevice {
		drives = slices.Insert(drives, 0, d)
	} else if i >= 0 && i <= len(drives) && !(i == 0 && len(drives) > 0 && drives[0].IsRootDevice) {
		drives = slices.Insert(drives, i, d)
	} else {
		drives = append(drives, d)
	}
	s.cfg.Drives = drives
	s.configured = true
	return nil
}

func (s *Server) patchDrive(ctx context.Context, p PartialDrive) error {
	i := slices.IndexFunc(s.cfg.Drives, func(x Drive) bool { return x.DriveID == p.DriveID })
	if i < 0 {
		return faultf("Invalid block device ID: no drive %q was configured before the start.", p.DriveID)
	}
	if err := s.checkPath("path_on_host", p.PathOnHost, regular, blockDev); err != nil {
		return err
	}
	if err := s.c.VMM.UpdateDrive(ctx, p.DriveID, p.PathOnHost); err != nil {
		return faultf("Unable to patch the block device: %v", err)
	}
	s.cfg.Drives[i].PathOnHost = p.PathOnHost
	return nil
}

func (s *Server) putNet(n NetworkInterface) error {
	for _, x := range s.cfg.Nets {
		if x.IfaceID == n.IfaceID {
			continue
		}
		if x.HostDevName == n.HostDevName {
			return faultf("The host device name %s is already in use by interface %s.", n.HostDevName, x.IfaceID)
		}
		if n.GuestMAC != "" && strings.EqualFold(x.GuestMAC, n.GuestMAC) {
			return faultf("The guest MAC address %s is already in use by interface %s.", n.GuestMAC, x.IfaceID)
		}
	}
	if i := slices.IndexFunc(s.cfg.Nets, func(x NetworkInterface) bool { return x.IfaceID == n.IfaceID }); i >= 0 {
		s.cfg.Nets[i] = n
	} else {
		s.cfg.Nets = append(s.cfg.Nets, n)
	}
	s.configured = true
	return nil
}

func (s *Server) putLogger(l Logger) error {
	if s.logger != nil {
		return faultf("Reinitialization of logger not allowed.")
	}
	if err := s.checkPath("log_path", l.LogPath); err != nil {
		return err
	}
	o, err := openOutput(l.LogPath)
	if err != nil {
		return faultf("Logger error: %v", err)
	}
	s.logger = o
	level := strings.ToLower(l.Level)
	if level == "" {
		level = "warning"
	}
	s.logger.level = logLevels[level]
	s.logger.showLevel = l.ShowLevel
	s.logf("info", "Running %s v%s (govmm)", AppName, Version)
	return nil
}

func (s *Server) putMetrics(m Metrics) error {
	if s.metrics != nil {
		return faultf("Reinitialization of metrics not allowed.")
	}
	if err := s.checkPath("metrics_path", m.MetricsPath); err != nil {
		return err
	}
	o, err := openOutput(m.MetricsPath)
	if err != nil {
		return faultf("Metrics error: %v", err)
	}
	s.metrics = o
	go s.periodicMetrics()
	return nil
}

// metricsPeriod is how often metrics are written without FlushMetrics,
// as Firecracker does.
const metricsPeriod = 60 * time.Second

func (s *Server) periodicMetrics() {
	t := time.NewTicker(metricsPeriod)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			if s.state != NotStarted {
				s.flushMetricsLocked()
			}
			s.mu.Unlock()
		}
	}
}

// metricsLine is one line of the metrics file.
type metricsLine struct {
	UTCTimestampMs int64    `json:"utc_timestamp_ms"`
	APIServer      apiStats `json:"api_server"`
	State          State    `json:"state"`
	Govmm          any      `json:"govmm,omitempty"`
}

func (s *Server) flushMetricsLocked() error {
	line := metricsLine{UTCTimestampMs: time.Now().UnixMilli(), APIServer: s.stats, State: s.state}
	if s.state != NotStarted {
		line.Govmm = s.c.VMM.Metrics()
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	return s.metrics.writeLine(b)
}

// logf writes a line to the logger, if set and its level lets it.
func (s *Server) logf(level, format string, a ...any) {
	if s.logger == nil || logLevels[level] > s.logger.level {
		return
	}
	lv := ""
	if s.logger.showLevel {
		lv = ":" + strings.ToUpper(level)
	}
	line := fmt.Sprintf("%s [%s%s] %s", time.Now().UTC().Format("2006-01-02T15:04:05.000000000"), s.c.ID, lv, fmt.Sprintf(format, a...))
	if err := s.logger.writeLine([]byte(line)); err != nil {
		s.stats.LoggerMissed++
		return
	}
	s.stats.LoggerLines++
}

func (s *Server) action(ctx context.Context, a string) error {
	switch a {
	case ActionInstanceStart:
		if s.state != NotStarted {
			return &Error{msgPostBoot}
		}
		if s.cfg.BootSource == nil {
			return faultf("Cannot start microvm without kernel configuration.")
		}
		if err := s.c.VMM.Start(ctx, s.cfg); err != nil {
			return faultf("Internal error while starting microVM: %v", err)
		}
		s.state = Running
		s.logf("info", "Successfully started microvm that was configured from one single json")
		return nil
	case ActionSendCtrlAltDel:
		if s.state == NotStarted {
			return &Error{msgPreBoot}
		}
		if s.state == Paused {
			return faultf("the microVM is paused and would not see the keys: resume it first (PATCH /vm {\"state\": \"Resumed\"})")
		}
		if err := s.c.VMM.CtrlAltDel(); err != nil {
			return faultf("SendCtrlAltDel: %v", err)
		}
		return nil
	case ActionFlushMetrics:
		if s.state == NotStarted {
			return &Error{msgPreBoot}
		}
		if s.metrics == nil {
			return faultf("Metrics error: the metrics system is not initialized: PUT /metrics first")
		}
		if err := s.flushMetricsLocked(); err != nil {
			return faultf("Metrics error: %v", err)
		}
		return nil
	}
	return faultf("action_type %q: give InstanceStart, SendCtrlAltDel or FlushMetrics", a) // ParseRequest refuses others
}

func (s *Server) patchVM(ctx context.Context, want string) error {
	switch {
	case want == VMPaused && s.state == Running:
		if err := s.c.VMM.Pause(ctx); err != nil {
			return faultf("Failed to pause the vCPUs: %v", err)
		}
		s.state = Paused
	case want == VMResumed && s.state == Paused:
		if err := s.c.VMM.Resume(); err != nil {
			return faultf("Failed to resume the vCPUs: %v", err)
		}
		s.state = Running
	}
	return nil // already in the state asked for
}

func (s *Server) snapshotCreate(ctx context.Context, c SnapshotCreate) error {
	if s.state != Paused {
		return faultf("Cannot create a snapshot of a running microVM: pause it first (PATCH /vm {\"state\": \"Paused\"})")
	}
	for _, p := range [][2]string{{"snapshot_path", c.SnapshotPath}, {"mem_file_path", c.MemFilePath}} {
		if err := s.checkPath(p[0], p[1]); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Dir(p[1])); err != nil {
			return faultf("%s %s: its folder: %v", p[0], p[1], err)
		}
	}
	if err := s.c.VMM.Snapshot(ctx, c); err != nil {
		return faultf("Cannot save the microVM state: %v", err)
	}
	return nil
}

func (s *Server) snapshotLoad(ctx context.Context, l SnapshotLoad) error {
	if s.configured {
		return faultf("Loading a microVM snapshot not allowed after configuring boot-specific resources.")
	}
	if err := s.checkPath("snapshot_path", l.SnapshotPath, regular); err != nil {
		return err
	}
	if err := s.checkPath("mem_file_path", l.MemPath(), regular); err != nil {
		return err
	}
	mc, err := s.c.VMM.Load(ctx, l)
	if err != nil {
		return faultf("Cannot load the snapshot: %v", err)
	}
	s.cfg.Machine = mc
	s.state = Paused
	if l.ResumeVM {
		if err := s.c.VMM.Resume(); err != nil {
			return faultf("The snapshot was loaded, but resuming it failed: %v", err)
		}
		s.state = Running
	}
	return nil
}
