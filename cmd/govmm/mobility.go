package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/migration"
	"github.com/govmm/govmm/snapshot"
	"github.com/govmm/govmm/trace"
)

// mobilityOptions are -api, -snapshot-dir, -restore and -incoming.
type mobilityOptions struct {
	api          string   // the control API's socket
	snapshotDirs []string // where the API may write snapshots
	restore      string   // a snapshot folder to restore instead of booting
	incoming     string   // tcp:HOST:PORT to wait on for a migration
	incomingAddr string
	// given are the flags that shape the machine given on the command
	// line: a restore checks them against the snapshot.
	given map[string]bool
}

// shapeFlags are the flags whose values a snapshot or a migration source
// fixes: given with -restore, they must match.
var shapeFlags = []string{"mem", "cpus", "device", "drive", "net", "rng", "pit", "debug-devices"}

// addMobilityFlags adds the control API's and the restore's flags.
func addMobilityFlags(fs *pflag.FlagSet, o *mobilityOptions) {
	fs.StringVar(&o.api, "api", "", "serve the control API on the Unix socket PATH (owner-only): govmm ctl -api PATH info|pause|resume|snapshot DIR|migrate tcp:HOST:PORT|power-button|stop|metrics")
	fs.StringArrayVar(&o.snapshotDirs, "snapshot-dir", nil, "a folder the control API may write snapshots in, or in folders below it (repeat for more; created when missing); without one, snapshots are refused")
	fs.StringVar(&o.restore, "restore", "", "restore the snapshot in folder DIR instead of booting: the guest goes on where it was saved (-kernel is not needed; -mem and -cpus, if given, must be the saved guest's, and the device flags its devices in kind and order, whose backends may differ: a clone's own disk copy, TAP or MAC)")
	fs.StringVar(&o.incoming, "incoming", "", "wait on tcp:HOST:PORT for a live migration (govmm ctl migrate on the source) and run the guest it brings; the flags that shape the machine must be the source's (-mem, -cpus, and devices of the same kinds in the same order; their backends may differ)")
}

// apply checks the words and remembers which shape flags were given.
func (o *mobilityOptions) apply(fs *pflag.FlagSet) error {
	if o.restore != "" && o.incoming != "" {
		return errors.New("-restore and -incoming: give one, a guest comes from a snapshot or from a migration")
	}
	if o.incoming != "" {
		addr, err := api.ParseTCP(o.incoming)
		if err != nil {
			return fmt.Errorf("-incoming: %w", err)
		}
		o.incomingAddr = addr
	}
	for i, d := range o.snapshotDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("-snapshot-dir: %w", err)
		}
		o.snapshotDirs[i] = abs
	}
	if len(o.snapshotDirs) > 0 && o.api == "" {
		return errors.New("-snapshot-dir without -api: snapshots are taken through the control API; give -api PATH too")
	}
	o.given = map[string]bool{}
	for _, f := range shapeFlags {
		if fl := fs.Lookup(f); fl != nil && fl.Changed {
			o.given[f] = true
		}
	}
	return nil
}

// bootless says the guest comes from elsewhere: no kernel to boot.
func (o *mobilityOptions) bootless() bool { return o.restore != "" || o.incoming != "" }

// mobility is what a run keeps for the control API, a restore and an
// incoming migration.
type mobility struct {
	o       *options
	stderr  io.Writer
	pagemap *os.File
	apiLn   net.Listener
	inLn    net.Listener
	in      *migration.Incoming
	server  *api.Server
	served  chan error
	from    string // where the guest came from, for -v and /v1/info
	// migrated holds where the guest went, once it did.
	migrated atomic.Pointer[string]
	start    time.Time
}

// readKernel reads -kernel, if given.
func readKernel(path string) (b []byte, unmap func() error, err error) {
	if path == "" {
		return nil, func() error { return nil }, nil // -restore or -incoming: parseFlags checked
	}
	// Mapped, not read (boot.MapFile): hashing it for the kernel cache
	// and copying what boots into guest RAM touch it once, from the page
	// cache (machine.New reads it under boot.Guard).
	if b, unmap, err = boot.MapFile(path); err != nil {
		return nil, nil, fmt.Errorf("reading the kernel: %w", err)
	}
	return b, unmap, nil
}

// prepareMobility opens, before govmm confines itself, what the control
// API, a restore and an incoming migration need later: the API's socket,
// /proc/self/pagemap, the snapshot folders (created) and the migration's
// listening socket; and for -restore it loads the snapshot into cfg.
func prepareMobility(o *options, cfg *machine.Config, stderr io.Writer) (mb *mobility, err error) {
	mb = &mobility{o: o, stderr: stderr, start: time.Now()}
	defer func() {
		if err != nil {
			mb.close()
		}
	}()
	m := &o.mob
	if m.api != "" || m.bootless() {
		// Which pages a restored guest wrote (snapshots and migrations
		// of it): readable by the process itself, kept open.
		if mb.pagemap, err = os.Open("/proc/self/pagemap"); err != nil && o.verbose {
			fmt.Fprintf(stderr, "govmm: /proc/self/pagemap: %v (a snapshot of a restored guest will read all its pages)\n", err)
		}
		err = nil
	}
	for _, d := range m.snapshotDirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return mb, fmt.Errorf("-snapshot-dir: %w", err)
		}
	}
	if m.api != "" {
		if mb.apiLn, err = api.Listen(m.api); err != nil {
			return mb, err
		}
	}
	switch {
	case m.restore != "":
		restore, f, err := snapshot.Load(m.restore)
		if err != nil {
			return mb, fmt.Errorf("-restore: %w", err)
		}
		cfg.Restore = restore
		if err := adoptShape(o, cfg, f.Machine.Config); err != nil {
			return mb, fmt.Errorf("-restore %s: %w", m.restore, err)
		}
		mb.from = "snapshot " + m.restore
	case m.incoming != "":
		if mb.inLn, err = net.Listen("tcp", m.incomingAddr); err != nil {
			return mb, fmt.Errorf("-incoming: %w", err)
		}
		if o.verbose {
			fmt.Fprintf(stderr, "govmm: waiting for a migration on %s\n", mb.inLn.Addr())
		}
	}
	return mb, nil
}

// adoptShape makes cfg (and the options Landlock and seccomp read) the
// saved guest's shape, refusing flags given that differ.
func adoptShape(o *options, cfg *machine.Config, saved machine.SavedConfig) error {
	if d := cfg.Differences(saved); len(d) > 0 {
		var given []string
		for _, s := range d {
			for f := range o.mob.given {
				if strings.HasPrefix(s, flagWhat[f]) {
					given = append(given, s)
				}
			}
		}
		if len(given) > 0 {
			return fmt.Errorf("the flags given differ from the saved guest: %s; leave them out, or give the saved guest's", strings.Join(given, "; "))
		}
	}
	cfg.ApplySaved(saved)
	o.mem, o.cpus, o.devices, o.pit, o.debugDevices = cfg.MemSize, cfg.CPUs, cfg.Devices, cfg.PIT, !cfg.NoDebugDevices
	return nil
}

// flagWhat is how machine.Config.Differences names what each shape flag
// sets.
var flagWhat = map[string]string{
	"mem": "guest RAM", "cpus": "vCPUs", "device": "devices", "drive": "devices", "net": "devices", "rng": "devices",
	"pit": "PIT", "debug-devices": "debug devices",
}

// receive waits for the incoming migration, if -incoming, and puts the
// guest it brings in cfg. The source's machine must have this one's
// shape. ctx ending (Ctrl-C) stops the wait.
func (mb *mobility) receive(ctx context.Context, cfg *machine.Config) error {
	if mb.inLn == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { mb.inLn.Close() })
	defer stop()
	conn, err := mb.inLn.Accept()
	mb.inLn.Close() // one migration
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("-incoming: stopped while waiting for a migration: %w", context.Cause(ctx))
		}
		return fmt.Errorf("-incoming: %w", err)
	}
	t := time.Now()
	check := func(s machine.SavedConfig) error {
		if d := cfg.Differences(s); len(d) > 0 {
			return fmt.Errorf("this govmm's machine differs from the source's: %s; start it with the source's -mem, -cpus and device flags", strings.Join(d, "; "))
		}
		return nil
	}
	var progress func(migration.RoundEnd)
	if mb.o.verbose {
		progress = func(e migration.RoundEnd) {
			fmt.Fprintf(mb.stderr, "govmm: incoming migration: round %d, %d pages\n", e.Round, e.Pages)
		}
	}
	in, err := migration.Receive(conn, check, progress)
	if err != nil {
		return err
	}
	mb.in = in
	cfg.Restore = in.Restore
	cfg.ApplySaved(in.Restore.State.Config)
	mb.from = "migration from " + conn.RemoteAddr().String()
	if mb.o.verbose {
		fmt.Fprintf(mb.stderr, "govmm: incoming migration from %s (%s): %d rounds, %d pages, %.1f MiB in %v\n", conn.RemoteAddr(), in.Source, in.Rounds, in.Pages, float64(in.Bytes)/(1<<20), time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// failed tells an incoming migration's source that this side gives up.
func (mb *mobility) failed(err error) {
	if mb.in != nil {
		mb.in.Abort(err)
		mb.in = nil
	}
}

// confine wraps the machine's Confine hook: once the guest is about to
// run here, an incoming migration's source is told so.
func (mb *mobility) confine(next func() error) func() error {
	return func() error {
		if err := next(); err != nil {
			mb.failed(err)
			return err
		}
		if mb.in != nil {
			err := mb.in.Running()
			mb.in = nil
			if err != nil {
				// The source stays paused; this side runs the guest.
				fmt.Fprintf(mb.stderr, "govmm: warning: telling the migration's source the guest runs here: %v\n", err)
			}
		}
		return nil
	}
}

// started is called with the machine built: an incoming migration's
// source is told it is ready and gives its go (else govmm ends without
// running the guest), and the control API starts serving; stats are the
// exit statistics it reports.
func (mb *mobility) started(m *machine.Machine, cfg *machine.Config, stats *trace.Stats) error {
	cfg.Restore = nil // a -reboot restart boots the kernel anew
	if mb.in != nil {
		if err := mb.in.Ready(); err != nil {
			mb.in = nil
			return err
		}
	}
	if mb.o.verbose && mb.from != "" {
		fmt.Fprintf(mb.stderr, "govmm: restored from %s in %v\n", mb.from, time.Since(mb.start).Round(time.Microsecond))
	}
	if mb.apiLn == nil {
		return nil
	}
	var pagemap io.ReaderAt
	if mb.pagemap != nil {
		pagemap = mb.pagemap
	}
	mb.server = api.NewServer(api.Config{
		Machine: m, SnapshotDirs: mb.o.mob.snapshotDirs, Pagemap: pagemap, Restored: mb.from, Log: mb.stderr,
		Exits:  func() any { return exitCounts(stats) },
		Cgroup: jailCgroup(mb.stderr),
		Migrated: func(uri string, r migration.Result) {
			mb.migrated.Store(&uri)
			fmt.Fprintf(mb.stderr, "govmm: the guest migrated to %s: %d rounds, %.1f MiB, downtime %v, in %v\n", uri, r.Rounds, float64(r.Sent)/(1<<20), r.Downtime.Round(time.Millisecond), r.Total.Round(time.Millisecond))
		},
	})
	mb.served = make(chan error, 1)
	go func() { mb.served <- mb.server.Serve(mb.apiLn) }()
	if mb.o.verbose {
		fmt.Fprintf(mb.stderr, "govmm: control API on %s\n", mb.o.mob.api)
	}
	return nil
}

// migratedTo is where the guest went, "" if it did not.
func (mb *mobility) migratedTo() string {
	if p := mb.migrated.Load(); p != nil {
		return *p
	}
	return ""
}

// close stops the API (its socket removed) and closes what prepare
// opened.
func (mb *mobility) close() {
	if mb.server != nil {
		if err := mb.server.Close(); err != nil {
			fmt.Fprintf(mb.stderr, "govmm: warning: closing the control API: %v\n", err)
		}
		<-mb.served
		mb.server = nil
	} else if mb.apiLn != nil {
		mb.apiLn.Close()
	}
	mb.apiLn = nil
	if mb.inLn != nil {
		mb.inLn.Close()
	}
	if mb.pagemap != nil {
		mb.pagemap.Close()
	}
}

// exitCounts are the exit statistics for /v1/metrics: counters by exit
// reason and by device, times in nanoseconds.
func exitCounts(stats *trace.Stats) any {
	if stats == nil {
		return nil
	}
	snap := stats.Snapshot()
	byReason := map[string]trace.Counter{}
	for r, c := range snap.ByReason {
		byReason[r.String()] = c
	}
	return map[string]any{"by_reason": byReason, "by_device": snap.ByDevice}
}
