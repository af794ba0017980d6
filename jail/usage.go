package jail

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Usage is what the jail's cgroup counted: read by the jailer when the
// VMM has ended (-v), and by the jailed VMM at any time for the control
// API's metrics (through Counters). A field the host does not count
// stays -1; the limits are -1 when none is set.
type Usage struct {
	MemoryCurrent int64         `json:"memory_bytes"`
	MemoryPeak    int64         `json:"memory_peak_bytes"`
	MemoryLimit   int64         `json:"memory_limit_bytes"`
	OOMKills      int64         `json:"oom_kills"`
	CPUTime       time.Duration `json:"cpu_ns"`
	// Periods are the CPU quota's periods, Throttled those the jail was
	// throttled in, for ThrottledTime in all.
	Periods       int64         `json:"cpu_periods"`
	Throttled     int64         `json:"cpu_throttled_periods"`
	ThrottledTime time.Duration `json:"cpu_throttled_ns"`
	PidsCurrent   int64         `json:"tasks"`
	PidsPeak      int64         `json:"tasks_peak"`
	PidsLimit     int64         `json:"tasks_limit"`
}

// counterReader reads a cgroup's counter files: the jailer's Cgroup by
// path, the jailed VMM's Counters through inherited descriptors.
type counterReader interface {
	version(ctrl string) int // 0: the controller is not used
	read(ctrl, file string) string
}

func (g *Cgroup) read(ctrl, file string) string {
	return readTrim(filepath.Join(g.ctrls[ctrl], file))
}

// usage reads the counters of every controller the cgroup has.
func (g *Cgroup) usage() Usage {
	if g == nil {
		return readUsage(nil)
	}
	return readUsage(g)
}

// readUsage reads the counters r has.
func readUsage(r counterReader) Usage {
	u := Usage{MemoryCurrent: -1, MemoryPeak: -1, MemoryLimit: -1, OOMKills: -1, CPUTime: -1, Periods: -1, Throttled: -1, ThrottledTime: -1, PidsCurrent: -1, PidsPeak: -1, PidsLimit: -1}
	if r == nil {
		return u
	}
	num := func(ctrl, file string) int64 { return parseInt(r.read(ctrl, file)) }
	key := func(ctrl, file, k string) int64 { return parseKey(r.read(ctrl, file), k) }
	switch r.version("memory") {
	case 2:
		u.MemoryCurrent = num("memory", "memory.current")
		u.MemoryPeak = num("memory", "memory.peak")
		u.MemoryLimit = num("memory", "memory.max")
		u.OOMKills = key("memory", "memory.events", "oom_kill")
	case 1:
		u.MemoryCurrent = num("memory", "memory.usage_in_bytes")
		u.MemoryPeak = num("memory", "memory.max_usage_in_bytes")
		u.MemoryLimit = num("memory", "memory.limit_in_bytes")
		u.OOMKills = key("memory", "memory.oom_control", "oom_kill")
	}
	if u.MemoryLimit >= 1<<62 {
		u.MemoryLimit = -1 // v1's "no limit", PAGE_COUNTER_MAX in bytes
	}
	if v := r.version("cpu"); v != 0 {
		u.Periods = key("cpu", "cpu.stat", "nr_periods")
		u.Throttled = key("cpu", "cpu.stat", "nr_throttled")
		if v == 2 {
			u.CPUTime = usec(key("cpu", "cpu.stat", "usage_usec"))
			u.ThrottledTime = usec(key("cpu", "cpu.stat", "throttled_usec"))
		} else {
			u.ThrottledTime = nsec(key("cpu", "cpu.stat", "throttled_time"))
		}
	}
	if r.version("cpuacct") != 0 && u.CPUTime < 0 {
		u.CPUTime = nsec(num("cpuacct", "cpuacct.usage"))
	}
	if r.version("pids") != 0 {
		u.PidsCurrent = num("pids", "pids.current")
		u.PidsPeak = num("pids", "pids.peak")
		u.PidsLimit = num("pids", "pids.max")
	}
	return u
}

func usec(n int64) time.Duration {
	if n < 0 {
		return -1
	}
	return time.Duration(n) * time.Microsecond
}

func nsec(n int64) time.Duration {
	if n < 0 {
		return -1
	}
	return time.Duration(n)
}

// parseInt reads a file's one number; "max" and errors give -1.
func parseInt(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// parseKey reads the number after key in a flat-keyed file (cpu.stat).
func parseKey(s, key string) int64 {
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// String is the usage in one line, leaving out what was not counted.
func (u Usage) String() string {
	var parts []string
	if u.MemoryPeak >= 0 {
		s := "memory peak " + mib(u.MemoryPeak)
		if u.MemoryLimit >= 0 {
			s += " of " + mib(u.MemoryLimit)
		}
		if u.OOMKills >= 0 {
			s += fmt.Sprintf(", %d OOM kills", u.OOMKills)
		}
		parts = append(parts, s)
	}
	if u.CPUTime >= 0 {
		parts = append(parts, "CPU "+u.CPUTime.Round(time.Microsecond).String())
	}
	if u.Throttled >= 0 && u.Periods >= 0 {
		s := fmt.Sprintf("throttled in %d of %d quota periods", u.Throttled, u.Periods)
		if u.ThrottledTime >= 0 {
			s += " (" + u.ThrottledTime.Round(time.Microsecond).String() + ")"
		}
		parts = append(parts, s)
	}
	if u.PidsPeak >= 0 {
		s := fmt.Sprintf("tasks peak %d", u.PidsPeak)
		if u.PidsLimit >= 0 {
			s += fmt.Sprintf(" of %d", u.PidsLimit)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "nothing counted (no cgroup controllers)"
	}
	return strings.Join(parts, "; ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
