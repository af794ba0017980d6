package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/firecracker"
	"github.com/govmm/govmm/sandbox"
	"github.com/govmm/govmm/snapshot"
)

// fcName is the name govmm answers to as Firecracker: run through a
// symlink of this name, or as govmm firecracker.
const fcName = "firecracker"

// fcOptions are Firecracker's command-line flags.
type fcOptions struct {
	apiSock       string
	id            string
	configFile    string
	noAPI         bool
	bootTimer     bool
	metadata      string
	noSeccomp     bool
	seccompFilter string
	logPath       string
	level         string
	showLevel     bool
	showOrigin    bool
	metricsPath   string
	version       bool
	// The jailer's start-time flags, and limits Firecracker takes: read
	// and checked, not used.
	startTimeUs, startTimeCPUUs, parentCPUTimeUs uint64
	maxPayload, mmdsSizeLimit                    uint64
	describeSnapshot                             string
	// govmm's own.
	allowedDirs []string
	kvmPath     string
	cacheDir    string
	verbose     bool
}

// parseFirecrackerFlags reads Firecracker's flags.
func parseFirecrackerFlags(args []string, stderr io.Writer) (*fcOptions, error) {
	o := &fcOptions{}
	fs := pflag.NewFlagSet(fcName, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.apiSock, "api-sock", "/run/firecracker.socket", "the Unix socket the API answers on; it must not exist")
	fs.StringVar(&o.id, "id", firecracker.DefaultID, "the microVM's ID: letters, digits, - and _, at most 64")
	fs.StringVar(&o.configFile, "config-file", "", "a JSON file configuring the microVM (Firecracker's kebab-case sections); the microVM starts at once")
	fs.BoolVar(&o.noAPI, "no-api", false, "serve no API (needs --config-file)")
	fs.BoolVar(&o.bootTimer, "boot-timer", false, "log the guest's boot-timer marks (govmm's debug-exit port 0xf5) to standard error")
	fs.StringVar(&o.metadata, "metadata", "", "a JSON file of MMDS metadata: checked, but govmm has no MMDS, so the guest cannot read it")
	fs.BoolVar(&o.noSeccomp, "no-seccomp", false, "install no seccomp filter")
	fs.StringVar(&o.seccompFilter, "seccomp-filter", "", "Firecracker's compiled BPF filter file: govmm cannot load those and installs its own allow-list instead")
	fs.StringVar(&o.logPath, "log-path", "", "a file or FIFO for the API's log (as PUT /logger)")
	fs.StringVar(&o.level, "level", "", "the log's level: Error, Warning, Info, Debug, Trace, Off (needs --log-path)")
	fs.BoolVar(&o.showLevel, "show-level", false, "name each log line's level (needs --log-path)")
	fs.BoolVar(&o.showOrigin, "show-log-origin", false, "accepted; govmm's log lines name no source file (needs --log-path)")
	fs.StringVar(&o.metricsPath, "metrics-path", "", "a file or FIFO for metrics, one JSON line per flush (as PUT /metrics)")
	fs.BoolVar(&o.version, "version", false, "print the Firecracker version whose API govmm follows, and govmm's")
	fs.Uint64Var(&o.startTimeUs, "start-time-us", 0, "the jailer's: when the process started (wall clock, µs)")
	fs.Uint64Var(&o.startTimeCPUUs, "start-time-cpu-us", 0, "the jailer's: the process's CPU time at its start (µs)")
	fs.Uint64Var(&o.parentCPUTimeUs, "parent-cpu-time-us", 0, "the jailer's: its own CPU time (µs)")
	fs.Uint64Var(&o.maxPayload, "http-api-max-payload-size", firecracker.MaxPayload, "the largest request body; govmm takes only the default")
	fs.Uint64Var(&o.mmdsSizeLimit, "mmds-size-limit", 0, "accepted; govmm has no MMDS")
	fs.StringVar(&o.describeSnapshot, "describe-snapshot", "", "not implemented in govmm (its snapshots are its own format)")
	fs.StringArrayVar(&o.allowedDirs, "allowed-dir", nil, "govmm's: a folder the API's requests may name files in (repeat for more); once the guest starts, Landlock confines govmm's file access to them too. Without any, every path is allowed")
	fs.StringVar(&o.kvmPath, "kvm", "/dev/kvm", "govmm's: the KVM device")
	fs.StringVar(&o.cacheDir, "cache", defaultCacheDir(), "govmm's: where decompressed kernels are cached")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "govmm's: say what govmm does on standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, pflag.ErrHelp
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: Firecracker's flags take no arguments besides their values", fs.Args())
	}
	changed := func(n string) bool { return fs.Lookup(n).Changed }
	switch {
	case o.noAPI && o.configFile == "":
		return nil, errors.New("--no-api needs --config-file: without the API the microVM can only be configured by the file")
	case o.noSeccomp && o.seccompFilter != "":
		return nil, errors.New("--no-seccomp and --seccomp-filter: give one")
	case (changed("level") || o.showLevel || o.showOrigin) && o.logPath == "":
		return nil, errors.New("--level, --show-level and --show-log-origin need --log-path")
	case o.describeSnapshot != "":
		return nil, errors.New("--describe-snapshot: govmm's snapshots are its own format, not Firecracker's; there is no data format version to print")
	case o.maxPayload != firecracker.MaxPayload:
		return nil, fmt.Errorf("--http-api-max-payload-size %d: govmm takes only the default, %d", o.maxPayload, firecracker.MaxPayload)
	case o.id == "" || len(o.id) > 64 || strings.Trim(o.id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "":
		return nil, fmt.Errorf("--id %q: give 1 to 64 letters, digits, - or _", o.id)
	}
	for i, d := range o.allowedDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("--allowed-dir: %w", err)
		}
		o.allowedDirs[i] = abs
	}
	return o, nil
}

// fcVersion is --version's text: Kata reads the first line.
func fcVersion(w io.Writer) {
	fmt.Fprintf(w, "Firecracker v%s\n\n%s, answering Firecracker's API v%s\n", firecracker.Version, snapshot.Version(), firecracker.Version)
}

// runFirecracker is govmm firecracker, and govmm run as firecracker.
func runFirecracker(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	o, err := parseFirecrackerFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	if o.version {
		fcVersion(stdout)
		return 0, nil
	}
	// The socket first: clients wait for it (the SDK gives 3 s).
	var ln net.Listener
	if !o.noAPI {
		if _, err := os.Lstat(o.apiSock); err == nil {
			return 1, fmt.Errorf("--api-sock %s: the path exists; remove it or give another (Firecracker never reuses a socket path)", o.apiSock)
		}
		if ln, err = api.Listen(o.apiSock); err != nil {
			return 1, err
		}
		defer ln.Close()
	}
	var reqs []firecracker.ConfigRequest
	if o.configFile != "" {
		data, err := os.ReadFile(o.configFile)
		if err != nil {
			return 1, fmt.Errorf("--config-file: %w", err)
		}
		cf, err := firecracker.ParseConfigFile(data)
		if err != nil {
			return 1, fmt.Errorf("--config-file %s: %w", o.configFile, err)
		}
		if len(cf.Ignored) > 0 {
			fmt.Fprintf(stderr, "govmm: --config-file %s: ignoring the sections Firecracker does not know, as it does: %s\n", o.configFile, strings.Join(cf.Ignored, ", "))
		}
		reqs = cf.Requests
	}
	if o.metadata != "" {
		if err := checkMetadata(o.metadata); err != nil {
			return 1, err
		}
		fmt.Fprintf(stderr, "govmm: warning: --metadata %s: govmm has no MMDS; the guest cannot read this metadata\n", o.metadata)
	}
	if o.seccompFilter != "" {
		if _, err := os.Stat(o.seccompFilter); err != nil {
			return 1, fmt.Errorf("--seccomp-filter: %w", err)
		}
		fmt.Fprintf(stderr, "govmm: warning: --seccomp-filter %s: govmm cannot load Firecracker's BPF filters; it installs its own allow-list (govmm -print-seccomp lists it)\n", o.seccompFilter)
	}
	vmm := newFCVMM(o, stdout, stderr)
	defer vmm.close()
	srv := firecracker.NewServer(firecracker.Config{ID: o.id, VMM: vmm, AllowedDirs: o.allowedDirs, Log: stderr})
	defer srv.Close()
	if o.logPath != "" {
		if err := startupRequest(srv, "/logger", firecracker.Logger{LogPath: o.logPath, Level: o.level, ShowLevel: o.showLevel, ShowLogOrigin: o.showOrigin}); err != nil {
			return 1, fmt.Errorf("--log-path: %w", err)
		}
	}
	if o.metricsPath != "" {
		if err := startupRequest(srv, "/metrics", firecracker.Metrics{MetricsPath: o.metricsPath}); err != nil {
			return 1, fmt.Errorf("--metrics-path: %w", err)
		}
	}
	served := make(chan error, 1)
	if ln != nil {
		go func() { served <- srv.Serve(ln) }()
		if o.verbose {
			fmt.Fprintf(stderr, "govmm: Firecracker API v%s on %s\n", firecracker.Version, o.apiSock)
		}
	}
	if reqs != nil {
		if err := srv.Apply(ctx, reqs); err != nil {
			return 1, fmt.Errorf("--config-file %s: %w", o.configFile, err)
		}
	}
	select {
	case res := <-vmm.exited:
		srv.Close()
		return res.status, res.err
	case err := <-served:
		vmm.stop()
		return 1, fmt.Errorf("the API server: %w", err)
	case <-ctx.Done():
		vmm.stop()
		var sig *stopSignal
		if errors.As(context.Cause(ctx), &sig) {
			return sig.status(), sig
		}
		return 143, errors.New("stopped by a signal")
	}
}

// startupRequest makes a PUT the command line stands for.
func startupRequest(srv *firecracker.Server, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	status, out := srv.Handle(context.Background(), "PUT", path, b)
	if status != 204 {
		var f firecracker.Fault
		if json.Unmarshal(out, &f) == nil {
			return errors.New(f.FaultMessage)
		}
		return errors.New(string(out))
	}
	return nil
}

// checkMetadata checks --metadata is a JSON object.
func checkMetadata(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--metadata: %w", err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("--metadata %s: not a JSON object: %w", path, err)
	}
	return nil
}

// fcSeccomp is the seccomp mode in Firecracker mode.
func (o *fcOptions) seccompMode() sandbox.Mode {
	if o.noSeccomp {
		return sandbox.SeccompOff
	}
	return sandbox.SeccompOn
}
