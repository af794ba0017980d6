package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// jailRows: what govmm jail adds to start-up (exec to the guest's first
// exit, jailed against not: namespaces, the root, the cgroup, the second
// exec), and what the seccomp filter adds to one exit round trip (mode=pio,
// -seccomp on against off). Both columns are govmm; the jailed runs need
// root.
func (s *suite) jailRows(ctx context.Context) []row {
	if !s.wants("jail") {
		return nil
	}
	if os.Geteuid() != 0 {
		c := missing("n/a (govmm jail needs root)")
		return []row{{Name: "start-up, jailed (govmm jail) vs not", Govmm: c, Peer: c, Unit: "ms"}}
	}
	base, err := os.MkdirTemp("", "govmm-bench-jail-")
	if err != nil {
		c := s.fail(err)
		return []row{{Name: "start-up, jailed (govmm jail) vs not", Govmm: c, Peer: c, Unit: "ms"}}
	}
	defer os.RemoveAll(base)
	// The serial console on stdio in both (the jail cannot bind-mount the
	// pipe behind /proc/self/fd/1), with stdin /dev/null.
	plainArgv := func(extra ...string) func(string, bool) []string {
		return func(cmdline string, verbose bool) []string {
			a := slices.Clone(s.govmm.argv(cmdline, verbose))
			for i := range a {
				if a[i] == "file:/proc/self/fd/1" {
					a[i] = "stdio"
				}
			}
			return append(a, extra...)
		}
	}
	plain := vmm{name: "govmm", argv: plainArgv()}
	jailed := vmm{name: "govmm jail", argv: func(cmdline string, verbose bool) []string {
		a := plain.argv(cmdline, verbose)
		return append([]string{a[0], "jail", "-uid", "65534", "-gid", "65534", "-base", filepath.Join(base, "b"), "-pids", "256", "--"}, a[1:]...)
	}}
	want := "ring3 ok"
	s.progress("jail: %d runs each of govmm and govmm jail (+1 warm-up), then mode=pio n=%d with -seccomp on and off", s.runs, s.n)
	var startPlain, startJailed []time.Duration
	for i := 0; i <= s.runs; i++ {
		a, err := runOnce(ctx, plain, bootCmdline, false, s.timeout, want)
		if err == nil && a.markSeen == 0 {
			err = fmt.Errorf("govmm printed no boot-timer mark:\n%s", tail(a.stderr))
		}
		if err != nil {
			c := s.fail(err)
			return []row{{Name: "start-up, jailed (govmm jail) vs not", Govmm: c, Peer: c, Unit: "ms"}}
		}
		b, err := runOnce(ctx, jailed, bootCmdline, false, s.timeout, want)
		if err == nil && b.markSeen == 0 {
			err = fmt.Errorf("govmm jail printed no boot-timer mark:\n%s", tail(b.stderr))
		}
		if err != nil {
			c := s.fail(err)
			return []row{{Name: "start-up, jailed (govmm jail) vs not", Govmm: c, Peer: c, Unit: "ms"}}
		}
		if i > 0 {
			startPlain, startJailed = append(startPlain, a.markSeen), append(startJailed, b.markSeen)
		}
	}
	rows := []row{{Name: "exec to first guest exit, govmm jail vs govmm", Govmm: value(durationMS(median(startJailed))), Peer: value(durationMS(median(startPlain))),
		Unit: "ms", Notes: fmt.Sprintf("peer: govmm unjailed; the jail (uid 65534, pids limit, new namespaces and root) adds %.1f ms (median of %d)", durationMS(median(startJailed)-median(startPlain)), s.runs)}}

	perExit := func(v vmm) (float64, error) {
		var withN, none []time.Duration
		for i := 0; i <= s.runs; i++ {
			a, err := runOnce(ctx, v, fmt.Sprintf("mode=pio n=%d", s.n), false, s.timeout, fmt.Sprintf("pio done n=%d", s.n))
			if err != nil {
				return 0, err
			}
			b, err := runOnce(ctx, v, "mode=pio n=0", false, s.timeout, "pio done n=0")
			if err != nil {
				return 0, err
			}
			if i > 0 {
				withN, none = append(withN, a.wall), append(none, b.wall)
			}
		}
		return float64(median(withN)-median(none)) / float64(time.Microsecond) / float64(s.n), nil
	}
	on, err1 := perExit(vmm{name: "govmm -seccomp on", argv: plainArgv("-seccomp", "on")})
	off, err2 := perExit(vmm{name: "govmm -seccomp off", argv: plainArgv("-seccomp", "off")})
	if err := firstError(err1, err2); err != nil {
		c := s.fail(err)
		return append(rows, row{Name: "exit round trip, -seccomp on vs off", Govmm: c, Peer: c, Unit: "us"})
	}
	return append(rows, row{Name: "exit round trip, mode=pio, -seccomp on vs off", Govmm: value(on), Peer: value(off), Unit: "us",
		Notes: fmt.Sprintf("peer: govmm -seccomp off; (wall n=%d - wall n=0)/n, median of %d", s.n, s.runs)})
}
