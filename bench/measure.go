package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/govmm/govmm/images/testguest"
)

// suite is what one set of measurements runs: the VMMs and how often.
type suite struct {
	govmm, cvmm vmm
	floor       floorBins // the empty programs of the floor row (floor.go)
	qemu        *vmm      // nil: QEMU rows are n/a for qemuWhy
	qemuWhy     string    // "n/a (...)"
	qemuNote    string    // how QEMU was run, for the notes
	memMiB      int
	runs        int           // runs of each VMM per measurement; the median is reported
	n           int           // exits per pio/mmio run
	timeout     time.Duration // per VMM run
	spinWait    time.Duration // for the guest's spin line
	only        string        // comma-separated measurements; "" all
	verbose     bool          // collect the start-up breakdown
	breakdown   []row         // the breakdown's rows, when verbose
	log         io.Writer     // progress
	errs        []error       // what failed, for the report
}

// bootCmdline is the guest of rows 1 and 2: the checks and a short loop.
const bootCmdline = "mode=check loops=1000"

func (s *suite) fail(err error) cell {
	s.errs = append(s.errs, err)
	return missing("failed")
}

// measurements are the names -only takes.
var measurements = []string{"boot", "rss", "pio", "mmio", "msix", "jail", "virtio", "trace", "mobility", "firecracker", "smp"}

func (s *suite) wants(m string) bool {
	return s.only == "" || slices.Contains(strings.Split(s.only, ","), m)
}

// all runs the measurements and returns the table's rows.
func (s *suite) all(ctx context.Context) []row {
	var rows []row
	if s.wants("boot") {
		rows = append(rows, s.bootRows(ctx)...)
	}
	if s.wants("rss") {
		rows = append(rows, s.rssRow(ctx))
	}
	rows = append(rows, s.exitRows(ctx)...)
	rows = append(rows, s.msixRows(ctx)...)        // msix.go
	rows = append(rows, s.virtioRows(ctx)...)      // virtio.go
	rows = append(rows, s.traceRows(ctx)...)       // trace.go
	rows = append(rows, s.mobilityRows(ctx)...)    // mobility.go
	rows = append(rows, s.firecrackerRows(ctx)...) // firecracker.go
	rows = append(rows, s.smpRows(ctx)...)         // smp.go
	return append(rows, s.jailRows(ctx)...)        // jail.go
}

// bootRows: exec to the guest's first exit, and boot-to-power-off wall
// time, for govmm, cvmm and QEMU, run in turn so that drift hits all alike.
func (s *suite) bootRows(ctx context.Context) []row {
	want := fmt.Sprintf("ring3 ok sum=%08x", testguest.Checksum(1000))
	type series struct {
		seen, own, wall []time.Duration
		phases          []phases // with -v
		err             error
	}
	run := func(v *vmm, se *series, keep bool) {
		if se.err != nil {
			return
		}
		verbose := v.name == "govmm" || s.verbose && v.name == "cvmm"
		r, err := runOnce(ctx, *v, bootCmdline, verbose, s.timeout, want)
		if err != nil {
			se.err = err
			return
		}
		if !keep {
			return // the warm-up run
		}
		se.wall = append(se.wall, r.wall)
		if r.markSeen > 0 {
			se.seen, se.own = append(se.seen, r.markSeen), append(se.own, r.markVMM)
		}
		if s.verbose {
			p := parsePhases(r.stderr)
			p[keyWall] = durationMS(r.wall)
			if r.markSeen > 0 {
				p[keySeen], p[keyMark] = durationMS(r.markSeen), durationMS(r.markVMM)
			}
			se.phases = append(se.phases, p)
		}
	}
	// govmm with its own PIT model instead of KVM's: cvmm has no PIT, and
	// KVM's costs a kthread at KVM_CREATE_PIT2 and SRCU grace periods and
	// the kthread's end when the VM goes (~15 ms on a PVM host).
	userPIT := withArgs(s.govmm, "govmm -pit user", "-pit", "user")
	// And without its sandbox too, as cvmm runs: the like-for-like row.
	bare := withArgs(userPIT, "govmm -pit user -seccomp off -landlock off", "-seccomp", "off", "-landlock", "off")
	var g, u, b, c, q series
	s.progress("boot: %d runs each of govmm, govmm -pit user, govmm -pit user without its sandbox, cvmm, qemu (+1 warm-up)", s.runs)
	for i := 0; i <= s.runs; i++ {
		run(&s.govmm, &g, i > 0)
		run(&userPIT, &u, i > 0)
		run(&bare, &b, i > 0)
		run(&s.cvmm, &c, i > 0)
		if s.qemu != nil {
			run(s.qemu, &q, i > 0)
		}
	}
	ms := func(se *series, ds []time.Duration) cell {
		switch {
		case se.err != nil:
			return s.fail(se.err)
		case len(ds) == 0:
			return s.fail(fmt.Errorf("no boot-timer line on stderr in %d runs", s.runs))
		}
		return value(durationMS(median(ds)))
	}
	if s.verbose {
		s.breakdown = breakdownRows(g.phases, c.phases)
	}
	qemuWall := missing(s.qemuWhy)
	if s.qemu != nil {
		qemuWall = ms(&q, q.wall)
	}
	return []row{
		{Name: "exec -> first guest exit (boot-timer mark), seen by bench", Govmm: ms(&g, g.seen), Peer: ms(&c, c.seen), Unit: "ms",
			Notes: "peer cvmm; bounds exec -> first KVM_RUN from above"},
		{Name: "VMM start -> first guest exit, VMM's own clock", Govmm: ms(&g, g.own), Peer: ms(&c, c.own), Unit: "ms",
			Notes: "peer cvmm; govmm's clock starts after Go runtime init and flag parsing"},
		{Name: "boot + power-off wall time (" + bootCmdline + ")", Govmm: ms(&g, g.wall), Peer: qemuWall, Unit: "ms",
			Notes: join("peer QEMU", s.qemuNote)},
		{Name: "boot + power-off wall time, against the C floor", Govmm: ms(&g, g.wall), Peer: ms(&c, c.wall), Unit: "ms",
			Notes: "peer cvmm (same runs as above)"},
		{Name: "exec -> first guest exit, govmm -pit user", Govmm: ms(&u, u.seen), Peer: ms(&c, c.seen), Unit: "ms",
			Notes: "peer cvmm (same runs); govmm's PIT model, not KVM's: no PIT kthread or its teardown"},
		{Name: "boot + power-off wall time, govmm -pit user", Govmm: ms(&u, u.wall), Peer: ms(&c, c.wall), Unit: "ms",
			Notes: "peer cvmm (same runs)"},
		{Name: "exec -> first guest exit, govmm -pit user -seccomp off -landlock off", Govmm: ms(&b, b.seen), Peer: ms(&c, c.seen), Unit: "ms",
			Notes: "peer cvmm (same runs); like for like: cvmm has neither a PIT nor a sandbox"},
		{Name: "boot + power-off wall time, govmm -pit user -seccomp off -landlock off", Govmm: ms(&b, b.wall), Peer: ms(&c, c.wall), Unit: "ms",
			Notes: "peer cvmm (same runs)"},
		s.floorRow(ctx),
	}
}

// rssRow: the VMM's resident memory besides the guest's pages.
func (s *suite) rssRow(ctx context.Context) row {
	guest := uint64(s.memMiB) << 20
	r := row{Name: fmt.Sprintf("VMM RSS minus guest-touched RSS (%d MiB guest, mode=spin)", s.memMiB), Unit: "MiB"}
	s.progress("rss: govmm, then qemu, mode=spin")
	note := func(who string, m rssResult) string {
		return fmt.Sprintf("%s VmRSS %.1f, guest %.1f of a %d MiB mapping", who, mib(m.vmRSS), mib(m.guestRSS), m.guestSize>>20)
	}
	if m, err := measureRSS(ctx, s.govmm, guest, s.spinWait, time.Second); err != nil {
		r.Govmm = s.fail(err)
	} else {
		r.Govmm, r.Notes = value(mib(m.overhead())), note("govmm", m)
	}
	if s.qemu == nil {
		r.Peer = missing(s.qemuWhy)
		return r
	}
	if m, err := measureRSS(ctx, *s.qemu, guest, s.spinWait, time.Second); err != nil {
		r.Peer = s.fail(err)
	} else {
		r.Peer = value(mib(m.overhead()))
		r.Notes = join(r.Notes, note("qemu", m))
	}
	return r
}

// exitRows: the time of one exit round trip, from runs with n exits less
// runs with none.
func (s *suite) exitRows(ctx context.Context) []row {
	var rows []row
	for _, mode := range []struct{ name, what string }{
		{"pio", "port write 0xf6 from ring 0"},
		{"mmio", "MMIO write 0xd0001002 from ring 3"},
	} {
		if !s.wants(mode.name) {
			continue
		}
		s.progress("%s: %d runs each of govmm and cvmm at n=%d and n=0 (+1 warm-up)", mode.name, s.runs, s.n)
		perExit := func(v vmm) (cell, string) {
			var withN, none []time.Duration
			for i := 0; i <= s.runs; i++ {
				a, err := runOnce(ctx, v, fmt.Sprintf("mode=%s n=%d", mode.name, s.n), false, s.timeout, fmt.Sprintf("%s done n=%d", mode.name, s.n))
				if err != nil {
					return s.fail(err), ""
				}
				b, err := runOnce(ctx, v, fmt.Sprintf("mode=%s n=0", mode.name), false, s.timeout, mode.name+" done n=0")
				if err != nil {
					return s.fail(err), ""
				}
				if i > 0 {
					withN, none = append(withN, a.wall), append(none, b.wall)
				}
			}
			d := median(withN) - median(none)
			return value(float64(d) / float64(time.Microsecond) / float64(s.n)),
				fmt.Sprintf("%s %.0f-%.0f ms", v.name, durationMS(median(withN)), durationMS(median(none)))
		}
		g, gn := perExit(s.govmm)
		c, cn := perExit(s.cvmm)
		rows = append(rows, row{Name: fmt.Sprintf("exit round trip, mode=%s (%s)", mode.name, mode.what), Govmm: g, Peer: c, Unit: "us",
			Notes: join(fmt.Sprintf("peer cvmm; (wall n=%d - wall n=0)/n:", s.n), gn, cn)})
	}
	return rows
}

func (s *suite) progress(format string, args ...any) {
	fmt.Fprintf(s.log, "bench: "+format+"\n", args...)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// join joins the non-empty parts with spaces.
func join(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}
