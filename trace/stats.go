package trace

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Stats counts the exits that reach user space, by reason and by device,
// with the time the VMM spent on them. It is an observer; Snapshot and
// Table may be called from any goroutine at any time (govmm prints the
// table on SIGUSR1 while the guest runs).
type Stats struct {
	mu       sync.Mutex
	byReason map[kvm.ExitReason]*Counter
	byDevice map[deviceKey]*Counter
}

// Counter is how many exits of one kind there were and the time they took.
type Counter struct {
	N uint64
	// VMM is the time the VMM took to handle them.
	VMM time.Duration
	// Guest is the time KVM_RUN ran before them.
	Guest time.Duration
}

// Mean is the VMM's mean time per exit.
func (c Counter) Mean() time.Duration {
	if c.N == 0 {
		return 0
	}
	return c.VMM / time.Duration(c.N)
}

type deviceKey struct {
	space devices.Space
	name  string // "" for accesses no device claims
}

// NewStats returns empty statistics.
func NewStats() *Stats {
	return &Stats{byReason: map[kvm.ExitReason]*Counter{}, byDevice: map[deviceKey]*Counter{}}
}

// Exit does nothing: Handled counts, once the time is known.
func (s *Stats) Exit(*vcpu.Event) vcpu.Action { return vcpu.Continue }

// Handled counts the exit. It allocates only the first time it meets a
// reason or a device.
func (s *Stats) Handled(ev *vcpu.Event) {
	info := DescribeEvent(ev)
	s.mu.Lock()
	defer s.mu.Unlock()
	add := func(c *Counter) {
		c.N++
		c.VMM += ev.Handling
		c.Guest += ev.InRun
	}
	c := s.byReason[info.Reason]
	if c == nil {
		c = &Counter{}
		s.byReason[info.Reason] = c
	}
	add(c)
	if info.Access() {
		k := deviceKey{info.Space, info.Device}
		d := s.byDevice[k]
		if d == nil {
			d = &Counter{}
			s.byDevice[k] = d
		}
		add(d)
	}
}

// Snapshot is the counts at one moment.
type Snapshot struct {
	ByReason map[kvm.ExitReason]Counter
	ByDevice map[string]Counter // "port NAME" or "mmio NAME"
	// KVM holds KVM's own counters (KVM_GET_STATS_FD) by vCPU, when read.
	KVM []map[string]uint64
}

// Snapshot copies the counts.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{ByReason: map[kvm.ExitReason]Counter{}, ByDevice: map[string]Counter{}}
	for r, c := range s.byReason {
		snap.ByReason[r] = *c
	}
	for k, c := range s.byDevice {
		snap.ByDevice[deviceName(k)] = *c
	}
	return snap
}

func deviceName(k deviceKey) string {
	if k.name == "" {
		return k.space.String() + " (no device)"
	}
	return k.space.String() + " " + k.name
}

// Since is the counts of s minus those of an earlier snapshot.
func (s Snapshot) Since(prev Snapshot) Snapshot {
	out := Snapshot{ByReason: map[kvm.ExitReason]Counter{}, ByDevice: map[string]Counter{}}
	sub := func(a, b Counter) Counter { return Counter{a.N - b.N, a.VMM - b.VMM, a.Guest - b.Guest} }
	for r, c := range s.ByReason {
		if d := sub(c, prev.ByReason[r]); d.N > 0 {
			out.ByReason[r] = d
		}
	}
	for n, c := range s.ByDevice {
		if d := sub(c, prev.ByDevice[n]); d.N > 0 {
			out.ByDevice[n] = d
		}
	}
	for i, m := range s.KVM {
		d := map[string]uint64{}
		for k, v := range m {
			var before uint64
			if i < len(prev.KVM) {
				before = prev.KVM[i][k]
			}
			if v > before {
				d[k] = v - before
			}
		}
		out.KVM = append(out.KVM, d)
	}
	return out
}

// Table writes the snapshot for people: exits by reason, by device, and
// KVM's own counters (which include the exits KVM handled in the kernel
// and user space never saw). prefix starts every line.
func (s Snapshot) Table(w io.Writer, prefix string) {
	var total Counter
	for _, c := range s.ByReason {
		total.N += c.N
		total.VMM += c.VMM
	}
	fmt.Fprintf(w, "%sexits to user space: %d, %v in the VMM (mean %v)\n", prefix, total.N, round(total.VMM), round(total.Mean()))
	row := func(name string, c Counter) {
		fmt.Fprintf(w, "%s  %-34s %9d %12v %10v\n", prefix, name, c.N, round(c.VMM), round(c.Mean()))
	}
	if len(s.ByReason) > 0 {
		fmt.Fprintf(w, "%s  %-34s %9s %12s %10s\n", prefix, "by reason", "count", "VMM total", "VMM mean")
		var rs []kvm.ExitReason
		for r := range s.ByReason {
			rs = append(rs, r)
		}
		sort.Slice(rs, func(i, j int) bool {
			return s.ByReason[rs[i]].N > s.ByReason[rs[j]].N || s.ByReason[rs[i]].N == s.ByReason[rs[j]].N && rs[i] < rs[j]
		})
		for _, r := range rs {
			row(r.String(), s.ByReason[r])
		}
	}
	if len(s.ByDevice) > 0 {
		fmt.Fprintf(w, "%s  %-34s %9s %12s %10s\n", prefix, "by device", "count", "VMM total", "VMM mean")
		var ns []string
		for n := range s.ByDevice {
			ns = append(ns, n)
		}
		sort.Slice(ns, func(i, j int) bool {
			return s.ByDevice[ns[i]].N > s.ByDevice[ns[j]].N || s.ByDevice[ns[i]].N == s.ByDevice[ns[j]].N && ns[i] < ns[j]
		})
		for _, n := range ns {
			row(n, s.ByDevice[n])
		}
	}
	for i, m := range s.KVM {
		if len(m) == 0 {
			continue
		}
		fmt.Fprintf(w, "%sKVM's own counters, vCPU %d (KVM_GET_STATS_FD; \"exits\" counts every exit, user space's included):\n", prefix, i)
		var names []string
		for n, v := range m {
			if v != 0 {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		line := prefix + " "
		for _, n := range names {
			item := fmt.Sprintf(" %s=%d", n, m[n])
			if len(line)+len(item) > 100 && line != prefix+" " {
				fmt.Fprintln(w, line)
				line = prefix + " "
			}
			line += item
		}
		if strings.TrimSpace(line) != strings.TrimSpace(prefix) {
			fmt.Fprintln(w, line)
		}
	}
}

// round shortens a duration for a table: microseconds below a second.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond)
	}
	return d
}
