package jail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The VMM in a jail reports its cgroup's usage in the control API's
// metrics, but it cannot read the cgroup the way the jailer does: its
// root has no /sys/fs/cgroup, Landlock confines it to the VM's files, and
// its seccomp filter allows no open after start-up. So the jailer opens
// the cgroup's counter files, read-only, and the VMM inherits them as
// descriptors (the jail's init passes them through its exec), named in
// the environment variable CountersEnv; it rereads each with pread64 at
// offset 0, as Go's runtime rereads cpu.max through a file it keeps open.
// Mounting the cgroup file system in the jail was weighed and not done:
// on a v1 host it is one mount per hierarchy, it shows more than the
// jail's own cgroup unless each folder is bind-mounted alone, and the
// files would still have to be opened before the seccomp filter is on.
//
// Only counters are passed: the limits the VMM sees are the files'
// contents, and a descriptor opened read-only cannot write them.

// CountersEnv is the environment variable that names the cgroup counter
// files a jailed VMM inherits: space-separated CONTROLLER@VERSION/FILE=FD.
const CountersEnv = "GOVMM_JAIL_CGROUP"

// counterFiles are the files usage reads, by controller and version.
func counterFiles(ctrl string, version int) []string {
	switch {
	case ctrl == "memory" && version == 2:
		return []string{"memory.current", "memory.peak", "memory.max", "memory.events"}
	case ctrl == "memory":
		return []string{"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.oom_control"}
	case ctrl == "cpu":
		return []string{"cpu.stat"}
	case ctrl == "cpuacct" && version == 1:
		return []string{"cpuacct.usage"}
	case ctrl == "pids":
		return []string{"pids.current", "pids.peak", "pids.max"}
	}
	return nil
}

// openCounters opens the counter files of g's controllers, and returns
// them with their names for CountersEnv, less the descriptor numbers:
// "memory@1/memory.usage_in_bytes" and so on, in the files' order.
func (g *Cgroup) openCounters() (string, []*os.File, error) {
	if g == nil {
		return "", nil, nil
	}
	ctrls := make([]string, 0, len(g.ctrls))
	for c := range g.ctrls {
		ctrls = append(ctrls, c)
	}
	slices.Sort(ctrls)
	var names []string
	var files []*os.File
	for _, ctrl := range ctrls {
		v := g.version(ctrl)
		for _, name := range counterFiles(ctrl, v) {
			f, err := os.Open(filepath.Join(g.ctrls[ctrl], name))
			if errors.Is(err, os.ErrNotExist) {
				continue // an older kernel's (memory.peak, pids.peak)
			}
			if err != nil {
				for _, f := range files {
					f.Close()
				}
				return "", nil, fmt.Errorf("jail: cgroup counters: %w", err)
			}
			files = append(files, f)
			names = append(names, fmt.Sprintf("%s@%d/%s", ctrl, v, name))
		}
	}
	return strings.Join(names, " "), files, nil
}

// countersEnv is CountersEnv's value for names whose files are at
// descriptors first, first+1, ... in the VMM.
func countersEnv(names string, first int) string {
	fields := strings.Fields(names)
	for i := range fields {
		fields[i] += "=" + strconv.Itoa(first+i)
	}
	return CountersEnv + "=" + strings.Join(fields, " ")
}

// Counters are a jailed VMM's cgroup counter files, inherited from the
// jailer.
type Counters struct {
	versions map[string]int
	fds      map[string]int // "ctrl/file" -> descriptor
}

// CountersFromEnv reads CountersEnv's value, as the jail set it: nil when
// the VMM does not run in a jail (or its cgroup has no controllers). It
// makes no system call, so it may be called after the seccomp filter is
// on; the descriptors must be left open.
func CountersFromEnv(value string) (*Counters, error) {
	if value == "" {
		return nil, nil
	}
	c := &Counters{versions: map[string]int{}, fds: map[string]int{}}
	for _, f := range strings.Fields(value) {
		name, fd, ok1 := strings.Cut(f, "=")
		cv, file, ok2 := strings.Cut(name, "/")
		ctrl, ver, ok3 := strings.Cut(cv, "@")
		n, err1 := strconv.Atoi(fd)
		v, err2 := strconv.Atoi(ver)
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil || n < 3 || (v != 1 && v != 2) {
			return nil, fmt.Errorf("%s: %q is not CONTROLLER@VERSION/FILE=FD", CountersEnv, f)
		}
		c.versions[ctrl] = v
		c.fds[ctrl+"/"+file] = n
	}
	return c, nil
}

// Usage reads the counters now. Nil Counters read nothing (all -1).
func (c *Counters) Usage() Usage {
	if c == nil {
		return readUsage(nil)
	}
	return readUsage(c)
}

func (c *Counters) version(ctrl string) int { return c.versions[ctrl] }

func (c *Counters) read(ctrl, file string) string {
	fd, ok := c.fds[ctrl+"/"+file]
	if !ok {
		return ""
	}
	b := make([]byte, 4096)
	n, err := unix.Pread(fd, b, 0)
	if err != nil || n < 0 {
		return ""
	}
	return strings.TrimSpace(string(b[:n]))
}
