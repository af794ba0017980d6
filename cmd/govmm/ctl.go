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
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/govmm/govmm/api"
)

const ctlUsage = `Usage: govmm ctl [-api PATH] COMMAND [ARGS]

Talks to a running govmm through its control API (govmm -api PATH; -api
here defaults to $GOVMM_API). Answers are JSON on standard output.

  info                      the guest's state (running, paused), shape and uptime
  pause                     pause the guest: vCPUs held, devices quiet, its clock stopped
  resume                    let it go on
  snapshot [-track] [-diff] DIR
                            save it to the folder DIR (under the running govmm's
                            -snapshot-dir): a state file and a sparse memory file;
                            -track counts written pages from then on, -diff writes
                            only those since the last -track or -diff snapshot;
                            govmm -restore DIR goes on from it
  migrate [flags] tcp:HOST:PORT
                            live-migrate the guest to govmm -incoming tcp:HOST:PORT;
                            progress on the terminal; the source exits once the
                            destination runs the guest (see migrate -h)
  power-button              press the guest's ACPI power button
  stop                      end the guest at once
  metrics                   the VMM's counters: vCPUs, devices, exits

Exit status: 0, or 1 with a one-line reason, 2 for a usage error.
`

// runCtl is govmm ctl.
func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := pflag.NewFlagSet("govmm ctl", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("api", os.Getenv("GOVMM_API"), "the control API's socket (govmm -api PATH)")
	fs.Usage = func() { fmt.Fprint(stderr, ctlUsage+"\nFlags:\n"); fs.PrintDefaults() }
	fs.SetInterspersed(false)
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, nil
		}
		return 2, fmt.Errorf("ctl: %w (run govmm ctl -h)", err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2, errors.New("ctl: give a command: info, pause, resume, snapshot DIR, migrate tcp:HOST:PORT, power-button, stop or metrics")
	}
	if *path == "" {
		return 2, errors.New("ctl: give the control API's socket with -api PATH (the one govmm was started with), or set $GOVMM_API")
	}
	c := api.NewClient(*path)
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	var out any
	var err error
	simple := map[string]func(context.Context) (api.Info, error){
		"info": c.Info, "pause": c.Pause, "resume": c.Resume, "power-button": c.PowerButton, "stop": c.Stop,
	}
	switch {
	case simple[cmd] != nil:
		if len(rest) > 0 {
			return 2, fmt.Errorf("ctl %s takes no arguments", cmd)
		}
		out, err = simple[cmd](ctx)
	case cmd == "metrics":
		if len(rest) > 0 {
			return 2, errors.New("ctl metrics takes no arguments")
		}
		out, err = c.Metrics(ctx)
	case cmd == "snapshot":
		var status int
		if out, status, err = ctlSnapshot(ctx, c, rest, stderr); status == 2 {
			return 2, err
		}
	case cmd == "migrate":
		var status int
		if out, status, err = ctlMigrate(ctx, c, rest, stderr); status == 2 {
			return 2, err
		}
	default:
		return 2, fmt.Errorf("ctl: unknown command %q: give info, pause, resume, snapshot, migrate, power-button, stop or metrics", cmd)
	}
	if err != nil {
		return 1, fmt.Errorf("ctl %s: %w", cmd, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 1, err
	}
	return 0, nil
}

// ctlSnapshot is ctl snapshot [-track] [-diff] DIR.
func ctlSnapshot(ctx context.Context, c *api.Client, args []string, stderr io.Writer) (any, int, error) {
	fs := pflag.NewFlagSet("govmm ctl snapshot", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var req api.SnapshotRequest
	fs.BoolVar(&req.Track, "track", false, "count the pages the guest writes from this snapshot on, for a -diff one")
	fs.BoolVar(&req.Diff, "diff", false, "write only the pages written since the last -track or -diff snapshot, which becomes this one's base")
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		return nil, 2, fmt.Errorf("ctl snapshot: %w", err)
	}
	if fs.NArg() != 1 {
		return nil, 2, errors.New("ctl snapshot: give the folder to write it to: govmm ctl snapshot DIR")
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return nil, 1, err
	}
	req.Dir = dir
	res, err := c.Snapshot(ctx, req)
	return res, 0, err
}

// ctlMigrate is ctl migrate [flags] tcp:HOST:PORT.
func ctlMigrate(ctx context.Context, c *api.Client, args []string, stderr io.Writer) (any, int, error) {
	fs := pflag.NewFlagSet("govmm ctl migrate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var req api.MigrateRequest
	var bandwidth string
	fs.DurationVar(&req.Downtime, "downtime", 300*time.Millisecond, "the downtime to aim under: the live rounds end once what is left would take less to send")
	fs.StringVar(&bandwidth, "bandwidth", "", "cap the sending rate, in bytes per second with K, M or G (binary units), e.g. 100M; none by default")
	fs.IntVar(&req.MaxRounds, "max-rounds", 30, "the most live rounds")
	fs.DurationVar(&req.MaxTime, "max-time", 5*time.Minute, "the most time for the live rounds")
	fs.StringVar(&req.OnLimit, "on-limit", "finish", "when -max-rounds or -max-time is reached: finish (pause the guest and send the rest) or cancel (give up; the guest goes on here)")
	quiet := fs.Bool("quiet", false, "no progress on standard error")
	if err := fs.Parse(longDashes(fs, args)); err != nil {
		return nil, 2, fmt.Errorf("ctl migrate: %w", err)
	}
	if fs.NArg() != 1 {
		return nil, 2, errors.New("ctl migrate: give the destination: govmm ctl migrate tcp:HOST:PORT")
	}
	if bandwidth != "" {
		b, err := parseSize(bandwidth)
		if err != nil {
			return nil, 2, fmt.Errorf("ctl migrate -bandwidth: %w", err)
		}
		if !strings.ContainsAny(bandwidth, "KMGTkmgt") {
			b >>= 20 // parseSize takes a bare number as MiB; a rate is bytes
		}
		req.Bandwidth = int64(b)
	}
	// govmm itself makes no name lookups once it runs the guest: the
	// name is resolved here.
	addr, err := api.ParseTCP(fs.Arg(0))
	if err != nil {
		return nil, 2, fmt.Errorf("ctl migrate: %w", err)
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, 1, fmt.Errorf("ctl migrate: %w", err)
	}
	req.URI = "tcp:" + tcp.String()
	var bar *progressBar
	if !*quiet {
		bar = newProgressBar(stderr)
	}
	res, err := c.Migrate(ctx, req, func(p api.MigrateProgress) {
		if bar != nil {
			bar.show(p)
		}
	})
	if bar != nil {
		bar.done()
	}
	return res, 0, err
}

// progressBar shows a migration's progress on standard error: one line
// redrawn in place on a terminal, a line per round otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	drawn    bool
}

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, terminal: ok && term.IsTerminal(int(f.Fd()))}
}

func (b *progressBar) show(p api.MigrateProgress) {
	mib := func(v float64) float64 { return v / (1 << 20) }
	line := fmt.Sprintf("migrate: %-8s round %-3d sent %8.1f MiB  dirty %6d pages (%7.1f MiB/s)  link %7.1f MiB/s  downtime ~%v",
		p.Phase, p.Round, mib(float64(p.SentBytes)), p.Dirty, mib(p.DirtyRate), mib(p.Bandwidth), p.Downtime.Round(time.Millisecond))
	if p.Phase == "done" {
		line = fmt.Sprintf("migrate: done in %v after %d rounds, %.1f MiB, downtime %v", p.Elapsed.Round(time.Millisecond), p.Round, mib(float64(p.SentBytes)), p.Downtime.Round(time.Millisecond))
	}
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

func (b *progressBar) done() {
	if b.terminal && b.drawn {
		fmt.Fprintln(b.w)
	}
}
