package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govmm/govmm/api"
)

// mobilityRows: snapshots, restores and live migrations of the test guest
// (issue 8): the guest paused for a snapshot and the memory file's size,
// for a mostly idle guest of 512 MiB and of 4 GiB (mode=spin: its pages
// are the few it touched); exec to the first guest instruction of a
// restore, against a boot of the same guest; migrations over loopback
// TCP of the idle guest and of one that writes every page of 256 MiB in
// a loop (mode=migrate) over a link capped at 1 GiB/s: total time, rounds
// and downtime; and the processes' resident memory.
func (s *suite) mobilityRows(ctx context.Context) []row {
	if !s.wants("mobility") {
		return nil
	}
	argv := s.govmm.argv("", false)
	bin, elf := argv[0], ""
	for i, a := range argv {
		if a == "-kernel" && i+1 < len(argv) {
			elf = argv[i+1]
		}
	}
	dir, err := os.MkdirTemp("", "govmm-bench-mobility-")
	if err != nil {
		c := s.fail(err)
		return []row{{Name: "snapshot", Govmm: c, Peer: c}}
	}
	defer os.RemoveAll(dir)
	m := &mobilityBench{s: s, bin: bin, elf: elf, dir: dir}
	var rows []row
	for _, mem := range []int{512, 4096} {
		s.progress("mobility: snapshot and %d restores of a %d MiB idle guest", s.runs, mem)
		rows = append(rows, m.snapshotRows(ctx, mem)...)
	}
	s.progress("mobility: migrations of an idle guest and of one writing 256 MiB a round at 1 GiB/s")
	rows = append(rows, m.migrateRows(ctx, "idle 512 MiB guest (mode=spin), no cap", 512, "mode=spin", 0)...)
	rows = append(rows, m.migrateRows(ctx, "256 MiB written a round (mode=migrate mb=256), link capped at 1 GiB/s", 512, "mode=migrate rounds=0 mb=256", 1<<30)...)
	return rows
}

type mobilityBench struct {
	s             *suite
	bin, elf, dir string
	n             int
}

// proc is one govmm run in the background, its serial output on stdout.
type proc struct {
	cmd    *exec.Cmd
	stdout *watchWriter
	stderr *watchWriter
	sock   string
	done   chan error
	start  time.Time
}

// watchWriter keeps output and signals each write.
type watchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func newWatchWriter() *watchWriter { return &watchWriter{more: make(chan struct{}, 1)} }

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.more <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// start runs govmm with args and an API socket of its own.
func (m *mobilityBench) start(ctx context.Context, args ...string) (*proc, error) {
	m.n++
	p := &proc{stdout: newWatchWriter(), stderr: newWatchWriter(), sock: filepath.Join(m.dir, fmt.Sprintf("api%d.sock", m.n)), done: make(chan error, 1)}
	args = append([]string{"-serial", "stdio", "-v", "-api", p.sock, "-snapshot-dir", m.dir}, args...)
	p.cmd = exec.CommandContext(ctx, m.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

// waitFor waits until w holds s, or the process ends, or a minute.
func (p *proc) waitFor(w *watchWriter, s string) error {
	limit := time.After(time.Minute)
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.more:
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("govmm ended (%v) before printing %q:\n%s", err, s, tail(p.stderr.String()))
		case <-limit:
			return fmt.Errorf("govmm did not print %q within a minute:\n%s", s, tail(p.stderr.String()))
		}
	}
	return nil
}

// stop ends the guest through the API and waits for govmm.
func (p *proc) stop(ctx context.Context) {
	_, _ = api.NewClient(p.sock).Stop(ctx) // it may have gone (migrated)
	<-p.done
}

// vcpuStart reads govmm -v's "starting N vCPU(s) Xms after start".
var vcpuStart = regexp.MustCompile(`starting \d+ vCPU\(s\) ([0-9.]+)(µs|ms|s) after start`)

func startedAfter(stderr string) (time.Duration, error) {
	m := vcpuStart.FindStringSubmatch(stderr)
	if m == nil {
		return 0, fmt.Errorf("govmm -v did not say when its vCPUs started:\n%s", tail(stderr))
	}
	return time.ParseDuration(m[1] + m[2])
}

// snapshotRows snapshots an idle guest of mem MiB, then restores it runs
// times: time to the first guest instruction against a boot's.
func (m *mobilityBench) snapshotRows(ctx context.Context, mem int) []row {
	s := m.s
	name := fmt.Sprintf("%d MiB idle guest", mem)
	failed := func(err error) []row {
		c := s.fail(err)
		return []row{{Name: "snapshot, " + name, Govmm: c, Peer: missing("n/a"), Unit: "ms"}}
	}
	var boots []time.Duration
	var snap api.SnapshotResult
	var diskMiB float64
	snapDir := filepath.Join(m.dir, fmt.Sprintf("snap-%d", mem))
	for i := 0; i <= s.runs; i++ {
		p, err := m.start(ctx, "-kernel", m.elf, "-mem", fmt.Sprintf("%dM", mem), "-append", "mode=spin")
		if err != nil {
			return failed(err)
		}
		if err := p.waitFor(p.stdout, "spin: ring 3 loops forever"); err != nil {
			p.stop(ctx)
			return failed(err)
		}
		d, err := startedAfter(p.stderr.String())
		if err == nil && i == s.runs {
			snap, err = api.NewClient(p.sock).Snapshot(ctx, api.SnapshotRequest{Dir: snapDir})
			if err == nil {
				diskMiB, err = allocatedMiB(snapDir)
			}
		}
		p.stop(ctx)
		if err != nil {
			return failed(err)
		}
		if i > 0 {
			boots = append(boots, d)
		}
	}
	var restores []time.Duration
	for i := 0; i <= s.runs; i++ {
		p, err := m.start(ctx, "-restore", snapDir)
		if err != nil {
			return failed(err)
		}
		err = p.waitFor(p.stderr, "after start")
		var d time.Duration
		if err == nil {
			d, err = startedAfter(p.stderr.String())
		}
		p.stop(ctx)
		if err != nil {
			return failed(err)
		}
		if i > 0 {
			restores = append(restores, d)
		}
	}
	return []row{
		{Name: "snapshot, " + name + ": guest paused", Govmm: value(durationMS(snap.Paused)), Peer: missing("n/a"), Unit: "ms",
			Notes: fmt.Sprintf("state file %d bytes; %d pages written", snap.StateBytes, snap.Pages)},
		{Name: "snapshot, " + name + ": memory file on disk", Govmm: value(diskMiB), Peer: value(float64(mem)), Unit: "MiB",
			Notes: "peer: its length (sparse: the pages never written are holes)"},
		{Name: "restore, " + name + ": exec to first guest instruction", Govmm: value(durationMS(median(restores))), Peer: value(durationMS(median(boots))), Unit: "ms",
			Notes: fmt.Sprintf("peer: govmm booting the same guest; exec to the vCPUs' start, median of %d (Firecracker reports 2.4 ms)", s.runs)},
	}
}

// allocatedMiB is the disk space the files in dir take.
func allocatedMiB(dir string) (float64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var blocks int64
	for _, e := range ents {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			return 0, err
		}
		blocks += st.Blocks
	}
	return float64(blocks*512) / (1 << 20), nil
}

// migrateRows migrates a guest between two govmm processes over
// loopback TCP, once (a migration moves the guest).
func (m *mobilityBench) migrateRows(ctx context.Context, name string, mem int, cmdline string, bandwidth int64) []row {
	s := m.s
	failed := func(err error) []row {
		c := s.fail(err)
		return []row{{Name: "migration, " + name, Govmm: c, Peer: missing("n/a"), Unit: "ms"}}
	}
	src, err := m.start(ctx, "-kernel", m.elf, "-mem", fmt.Sprintf("%dM", mem), "-append", cmdline)
	if err != nil {
		return failed(err)
	}
	defer src.stop(ctx)
	want := "spin: ring 3"
	if strings.Contains(cmdline, "migrate") {
		want = "BBBBB"
	}
	if err := src.waitFor(src.stdout, want); err != nil {
		return failed(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return failed(err)
	}
	addr := l.Addr().String()
	l.Close()
	dst, err := m.start(ctx, "-incoming", "tcp:"+addr, "-mem", fmt.Sprintf("%dM", mem))
	if err != nil {
		return failed(err)
	}
	defer dst.stop(ctx)
	if err := dst.waitFor(dst.stderr, "waiting for a migration"); err != nil {
		return failed(err)
	}
	res, err := api.NewClient(src.sock).Migrate(ctx, api.MigrateRequest{URI: "tcp:" + addr, Bandwidth: bandwidth}, nil)
	if err != nil {
		return failed(fmt.Errorf("migration of the %s: %w\nsource:\n%s\ndestination:\n%s", name, err, tail(src.stderr.String()), tail(dst.stderr.String())))
	}
	<-src.done
	src.done <- nil
	var srcPeak uint64
	if ru, ok := src.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		srcPeak = uint64(ru.Maxrss) << 10
	}
	if err := dst.waitFor(dst.stderr, "starting 1 vCPU"); err != nil {
		return failed(err)
	}
	dstRSS, dstPeak := procRSS(dst.cmd.Process.Pid)
	conv := "converged under the 300 ms target"
	if !res.Converged {
		conv = "did not converge: finished by the bound on rounds"
	}
	return []row{
		{Name: "migration, " + name + ": downtime", Govmm: value(durationMS(res.Downtime)), Peer: missing("n/a"), Unit: "ms",
			Notes: fmt.Sprintf("source paused to the destination's confirmation; %d rounds, %.1f MiB sent in %.0f ms; %s", res.Rounds, mib(uint64(res.SentBytes)), durationMS(res.Total), conv)},
		{Name: "migration, " + name + ": RSS", Govmm: value(mib(srcPeak)), Peer: value(mib(dstRSS)), Unit: "MiB",
			Notes: fmt.Sprintf("govmm: the source's peak during it; peer: the destination's after it (its peak %.1f)", mib(dstPeak))},
	}
}

// procRSS reads VmRSS and VmHWM of a process.
func procRSS(pid int) (rss, peak uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak
}
