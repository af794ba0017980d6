package jail

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Usage is what the jail's cgroup counted, read when the VMM has ended.
// A field the host does not count stays -1.
type Usage struct {
	MemoryPeak, MemoryLimit int64 // bytes
	OOMKills                int64
	CPUTime                 time.Duration
	Periods, Throttled      int64 // CPU quota periods, and those the jail was throttled in
	ThrottledTime           time.Duration
	PidsPeak, PidsLimit     int64
}

// usage reads the counters of every controller the cgroup has.
func (g *Cgroup) usage() Usage {
	u := Usage{MemoryPeak: -1, MemoryLimit: -1, OOMKills: -1, CPUTime: -1, Periods: -1, Throttled: -1, ThrottledTime: -1, PidsPeak: -1, PidsLimit: -1}
	if g == nil {
		return u
	}
	if dir, ok := g.ctrls["memory"]; ok {
		if g.version("memory") == 2 {
			u.MemoryPeak = readInt(dir, "memory.peak")
			u.MemoryLimit = readInt(dir, "memory.max")
			u.OOMKills = readKey(dir, "memory.events", "oom_kill")
		} else {
			u.MemoryPeak = readInt(dir, "memory.max_usage_in_bytes")
			u.MemoryLimit = readInt(dir, "memory.limit_in_bytes")
			u.OOMKills = readKey(dir, "memory.oom_control", "oom_kill")
		}
		if g.cfg.Memory == 0 {
			u.MemoryLimit = -1
		}
	}
	if dir, ok := g.ctrls["cpu"]; ok {
		u.Periods = readKey(dir, "cpu.stat", "nr_periods")
		u.Throttled = readKey(dir, "cpu.stat", "nr_throttled")
		if g.version("cpu") == 2 {
			u.CPUTime = usec(readKey(dir, "cpu.stat", "usage_usec"))
			u.ThrottledTime = usec(readKey(dir, "cpu.stat", "throttled_usec"))
		} else {
			u.ThrottledTime = nsec(readKey(dir, "cpu.stat", "throttled_time"))
		}
	}
	if dir, ok := g.ctrls["cpuacct"]; ok && u.CPUTime < 0 {
		u.CPUTime = nsec(readInt(dir, "cpuacct.usage"))
	}
	if dir, ok := g.ctrls["pids"]; ok {
		u.PidsPeak = readInt(dir, "pids.peak")
		if g.cfg.Pids > 0 {
			u.PidsLimit = int64(g.cfg.Pids)
		}
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

// readInt reads a file holding one number; "max" and errors give -1.
func readInt(dir, file string) int64 {
	n, err := strconv.ParseInt(readTrim(filepath.Join(dir, file)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// readKey reads the number after key in a flat-keyed file (cpu.stat).
func readKey(dir, file, key string) int64 {
	for _, line := range strings.Split(readTrim(filepath.Join(dir, file)), "\n") {
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
