package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// mapping is one entry of /proc/PID/smaps.
type mapping struct {
	Start, End uint64
	Perms      string
	Path       string // "" for anonymous memory
	Size, Rss  uint64 // bytes
}

// parseSmaps reads the mappings of a /proc/PID/smaps file
// (Documentation/filesystems/proc.rst, "smaps").
func parseSmaps(s string) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || len(f) < 5 {
				return nil, fmt.Errorf("smaps: bad mapping line %q", sc.Text())
			}
			m := mapping{Start: start, End: end, Perms: f[1]}
			if len(f) > 5 {
				m.Path = strings.Join(f[5:], " ")
			}
			out = append(out, m)
			continue
		}
		if len(out) == 0 || len(f) != 3 || f[2] != "kB" {
			continue // VmFlags and the like
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("smaps: bad line %q", sc.Text())
		}
		switch f[0] {
		case "Size:":
			out[len(out)-1].Size = kb << 10
		case "Rss:":
			out[len(out)-1].Rss = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps: %w", err)
	}
	return out, nil
}

// guestMapping picks the guest RAM among ms: the smallest writable
// mapping at least guestBytes long that is anonymous or a memory file
// (memfd_create's "/memfd:NAME", as govmm's RAM is).
func guestMapping(ms []mapping, guestBytes uint64) (mapping, error) {
	var best mapping
	found := false
	for _, m := range ms {
		ram := m.Path == "" || strings.HasPrefix(m.Path, "/memfd:")
		if !ram || !strings.HasPrefix(m.Perms, "rw") || m.Size < guestBytes {
			continue
		}
		if !found || m.Size < best.Size {
			best, found = m, true
		}
	}
	if !found {
		return mapping{}, fmt.Errorf("no writable anonymous or memfd mapping of at least %d MiB in smaps: is this the VMM process?", guestBytes>>20)
	}
	return best, nil
}

// parseVmRSS returns VmRSS from a /proc/PID/status file, in bytes.
func parseVmRSS(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
			return 0, fmt.Errorf("status: bad line %q", line)
		}
	}
	return 0, fmt.Errorf("status: no VmRSS line")
}

// rssResult is a VMM's memory while its guest spins.
type rssResult struct {
	vmRSS, guestRSS, guestSize uint64
}

// overhead is the VMM's own resident memory: VmRSS less the guest's.
func (r rssResult) overhead() uint64 { return r.vmRSS - min(r.guestRSS, r.vmRSS) }

const spinLine = "spin: ring 3 loops forever"

// measureRSS runs v with mode=spin, waits for the guest's spin line and
// settle more, reads the process's VmRSS and guest mapping, and kills it.
func measureRSS(ctx context.Context, v vmm, guestBytes uint64, wait, settle time.Duration) (rssResult, error) {
	argv := v.argv("mode=spin", false)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	lw := &lineWatcher{want: spinLine, seen: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = lw, lw
	if err := cmd.Start(); err != nil {
		return rssResult{}, fmt.Errorf("start %s: %w", v.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		// Kill only our own child; its exit status is the kill's.
		if err := cmd.Process.Kill(); err == nil {
			<-exited
		}
	}
	select {
	case <-lw.seen:
	case err := <-exited:
		return rssResult{}, fmt.Errorf("%s ended (%v) before the guest printed %q:\n%s", v.name, err, spinLine, tail(lw.String()))
	case <-time.After(wait):
		stop()
		return rssResult{}, fmt.Errorf("%s: no %q within %v:\n%s", v.name, spinLine, wait, tail(lw.String()))
	}
	defer stop()
	select {
	case <-time.After(settle):
	case err := <-exited:
		return rssResult{}, fmt.Errorf("%s ended (%v) while the guest should spin", v.name, err)
	}
	pid := cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssResult{}, fmt.Errorf("read %s's status: %w", v.name, err)
	}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return rssResult{}, fmt.Errorf("read %s's smaps: %w", v.name, err)
	}
	var r rssResult
	if r.vmRSS, err = parseVmRSS(string(status)); err != nil {
		return r, fmt.Errorf("%s: %w", v.name, err)
	}
	ms, err := parseSmaps(string(smaps))
	if err != nil {
		return r, fmt.Errorf("%s: %w", v.name, err)
	}
	g, err := guestMapping(ms, guestBytes)
	if err != nil {
		return r, fmt.Errorf("%s: %w", v.name, err)
	}
	r.guestRSS, r.guestSize = g.Rss, g.Size
	return r, nil
}

// lineWatcher collects output and closes seen when want first appears.
type lineWatcher struct {
	want string
	seen chan struct{}
	mu   sync.Mutex
	buf  strings.Builder
	done bool
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	if !l.done && strings.Contains(l.buf.String(), l.want) {
		l.done = true
		close(l.seen)
	}
	return len(p), nil
}

func (l *lineWatcher) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
