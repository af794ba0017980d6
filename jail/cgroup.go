package jail

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The cgroup files govmm's jail writes and reads, as documented in the
// kernel's Documentation/admin-guide/cgroup-v1/{cpusets,memory,pids}.rst,
// scheduler/sched-bwc.rst (CFS bandwidth) and cgroup-v2.rst.
//
// Hosts have cgroup v1 (one hierarchy per controller, or a few
// together), v2 (one hierarchy), or both: these machines mount the v1
// controllers at /sys/fs/cgroup/<name> and an empty cgroup2 at
// /sys/fs/cgroup/unified. Each controller is taken from wherever the host
// has it (a v1 hierarchy first, as systemd's hybrid layout means), or
// from the version CgroupConfig.Version asks for.
//
// containerd/cgroups was weighed and not used: its v1 and v2 managers are
// separate (the caller still picks per host, and per controller on hybrid
// hosts like these), and it brings systemd's D-Bus client, cilium/ebpf and
// protobuf into a VMM that needs a dozen file writes.

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	version     int             // 1 or 2
	mount       string          // where it is mounted
	own         string          // the jailer's cgroup in it, as a path on disk
	controllers map[string]bool // v1: those bound to it; v2: cgroup.controllers of the root
}

// parseHierarchies reads /proc/self/mountinfo and /proc/self/cgroup. A v2
// hierarchy's controllers are left for the caller to read.
func parseHierarchies(mountinfo, selfCgroup string) []hierarchy {
	own1 := map[string]string{} // v1 controller (or name=...) -> cgroup path
	own2 := ""
	for _, line := range strings.Split(selfCgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			own2 = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			own1[c] = f[2]
		}
	}
	var hs []hierarchy
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		root, mnt := pf[3], unescapeMount(pf[4])
		switch qf[0] {
		case "cgroup":
			h := hierarchy{version: 1, mount: mnt, controllers: map[string]bool{}}
			own := ""
			for _, opt := range strings.Split(qf[2], ",") {
				if p, ok := own1[opt]; ok {
					own = p
					if !strings.HasPrefix(opt, "name=") {
						h.controllers[opt] = true
					}
				}
			}
			if len(h.controllers) == 0 {
				continue
			}
			h.own = onDisk(mnt, root, own)
			hs = append(hs, h)
		case "cgroup2":
			hs = append(hs, hierarchy{version: 2, mount: mnt, own: onDisk(mnt, root, own2), controllers: map[string]bool{}})
		}
	}
	return hs
}

// onDisk is where cgroup path p of a hierarchy whose root dir is mounted
// at mnt lives.
func onDisk(mnt, root, p string) string {
	rel, ok := strings.CutPrefix(p, root)
	if !ok {
		rel = p
	}
	return filepath.Join(mnt, rel)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hostHierarchies reads this host's hierarchies, with v2's controllers.
func hostHierarchies() ([]hierarchy, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("jail: cgroup: %w", err)
	}
	sc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("jail: cgroup: %w", err)
	}
	hs := parseHierarchies(string(mi), string(sc))
	for i := range hs {
		if hs[i].version != 2 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(hs[i].mount, "cgroup.controllers"))
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			hs[i].controllers[c] = true
		}
	}
	return hs, nil
}

// needed lists the controllers c's limits need (required) and those the
// usage report reads when present (wanted).
func (c CgroupConfig) needed() (required, wanted []string) {
	if c.CPUs > 0 {
		required = append(required, "cpu")
	}
	if c.CPUSet != "" || c.MemSet != "" {
		required = append(required, "cpuset")
	}
	if c.Memory > 0 {
		required = append(required, "memory")
	}
	if c.Pids > 0 {
		required = append(required, "pids")
	}
	return required, []string{"memory", "cpu", "cpuacct", "pids"}
}

// pick chooses a hierarchy for each controller: the required ones or an
// error naming what the host has, then the wanted ones it has.
func pick(hs []hierarchy, version int, required, wanted []string) (map[string]*hierarchy, error) {
	find := func(ctrl string) *hierarchy {
		for _, v := range []int{1, 2} {
			if version != 0 && v != version {
				continue
			}
			for i := range hs {
				if hs[i].version == v && hs[i].controllers[ctrl] {
					return &hs[i]
				}
			}
		}
		return nil
	}
	got := map[string]*hierarchy{}
	for _, ctrl := range required {
		h := find(ctrl)
		if h == nil {
			return nil, fmt.Errorf("jail: this host has no %s cgroup controller%s: %s", ctrl, versionWords(version), describe(hs))
		}
		got[ctrl] = h
	}
	for _, ctrl := range wanted {
		if got[ctrl] == nil {
			if h := find(ctrl); h != nil {
				got[ctrl] = h
			}
		}
	}
	return got, nil
}

func versionWords(v int) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf(" in cgroup v%d (-cgroup-version %d)", v, v)
}

// describe says what hierarchies a host has, for errors.
func describe(hs []hierarchy) string {
	if len(hs) == 0 {
		return "no cgroup file system is mounted (mount cgroup2 at /sys/fs/cgroup, or leave out the limit)"
	}
	var parts []string
	for _, h := range hs {
		var cs []string
		for c := range h.controllers {
			cs = append(cs, c)
		}
		slices.Sort(cs)
		if len(cs) == 0 {
			cs = []string{"no controllers"}
		}
		parts = append(parts, fmt.Sprintf("v%d at %s has %s", h.version, h.mount, strings.Join(cs, ",")))
	}
	return strings.Join(parts, "; ") + " (-cgroup-version auto picks each where it is)"
}

// Cgroup is the jail's cgroup: one folder in each hierarchy used.
type Cgroup struct {
	dirs  []cgroupDir
	ctrls map[string]string // controller -> its folder
	cfg   CgroupConfig
}

type cgroupDir struct {
	version int
	path    string
	made    bool
}

// newCgroup makes the jail's cgroup, named id under cfg.Parent, and
// writes its limits. On an error it removes what it made.
func newCgroup(id string, cfg CgroupConfig) (g *Cgroup, err error) {
	required, wanted := cfg.needed()
	hs, err := hostHierarchies()
	if err != nil {
		return nil, err
	}
	chosen, err := pick(hs, cfg.Version, required, wanted)
	if err != nil {
		return nil, err
	}
	g = &Cgroup{ctrls: map[string]string{}, cfg: cfg}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.remove())
			g = nil
		}
	}()
	byHier := map[*hierarchy][]string{}
	var order []*hierarchy
	for _, ctrl := range append(required, wanted...) {
		h := chosen[ctrl]
		if h == nil || slices.Contains(byHier[h], ctrl) {
			continue
		}
		if byHier[h] == nil {
			order = append(order, h)
		}
		byHier[h] = append(byHier[h], ctrl)
	}
	for _, h := range order {
		parent := h.own
		if strings.HasPrefix(cfg.Parent, "/") {
			parent = filepath.Join(h.mount, cfg.Parent)
		} else if cfg.Parent != "" {
			parent = filepath.Join(h.own, cfg.Parent)
		}
		if _, err := os.Stat(parent); err != nil {
			return g, fmt.Errorf("jail: -cgroup-parent: %w (the parent cgroup must exist)", err)
		}
		if h.version == 2 {
			if err := enableV2(parent, byHier[h]); err != nil {
				return g, err
			}
		}
		dir := filepath.Join(parent, "govmm-"+id)
		if err := os.Mkdir(dir, 0o755); err != nil {
			if errors.Is(err, os.ErrExist) {
				return g, fmt.Errorf("jail: cgroup %s exists: another jail with -id %s runs, or one was killed (rmdir it)", dir, id)
			}
			return g, fmt.Errorf("jail: cgroup: %w", err)
		}
		g.dirs = append(g.dirs, cgroupDir{version: h.version, path: dir, made: true})
		for _, ctrl := range byHier[h] {
			g.ctrls[ctrl] = dir
		}
	}
	return g, g.limit()
}

// enableV2 turns the controllers on for parent's children.
func enableV2(parent string, ctrls []string) error {
	b, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("jail: cgroup: %w", err)
	}
	on := strings.Fields(string(b))
	var add []string
	for _, c := range ctrls {
		if c == "cpuacct" || slices.Contains(on, c) {
			continue
		}
		add = append(add, "+"+c)
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("jail: cgroup v2: cannot enable %s in %s: it holds processes (v2's no-internal-processes rule): give -cgroup-parent an empty cgroup, e.g. /govmm after mkdir /sys/fs/cgroup/govmm", strings.Join(add, " "), parent)
		}
		return fmt.Errorf("jail: cgroup v2: enabling %s in %s: %w", strings.Join(add, " "), parent, err)
	}
	return nil
}

// cfsPeriod is the CPU quota's period, 100 ms as the kernel's default.
const cfsPeriod = 100 * time.Millisecond

// limit writes the limits into the controllers' folders.
func (g *Cgroup) limit() error {
	c := g.cfg
	v2 := func(ctrl string) bool { return g.version(ctrl) == 2 }
	if c.CPUSet != "" || c.MemSet != "" {
		dir := g.ctrls["cpuset"]
		cpus, mems := c.CPUSet, c.MemSet
		// v1 needs both before a task may join; take the parent's.
		if !v2("cpuset") {
			if cpus == "" {
				cpus = readTrim(filepath.Join(filepath.Dir(dir), "cpuset.cpus"))
			}
			if mems == "" {
				mems = readTrim(filepath.Join(filepath.Dir(dir), "cpuset.mems"))
			}
		}
		if cpus != "" {
			if err := write(dir, "cpuset.cpus", cpus, "-cpuset"); err != nil {
				return err
			}
		}
		if mems != "" {
			if err := write(dir, "cpuset.mems", mems, "-memset"); err != nil {
				return err
			}
		}
	}
	if c.CPUs > 0 {
		quota := int64(c.CPUs * float64(cfsPeriod/time.Microsecond))
		dir := g.ctrls["cpu"]
		if v2("cpu") {
			if err := write(dir, "cpu.max", fmt.Sprintf("%d %d", quota, cfsPeriod/time.Microsecond), "-cpu-quota"); err != nil {
				return err
			}
		} else {
			if err := write(dir, "cpu.cfs_period_us", strconv.Itoa(int(cfsPeriod/time.Microsecond)), "-cpu-quota"); err != nil {
				return err
			}
			if err := write(dir, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10), "-cpu-quota"); err != nil {
				return err
			}
		}
	}
	if c.Memory > 0 {
		dir := g.ctrls["memory"]
		m := strconv.FormatUint(c.Memory, 10)
		if v2("memory") {
			if err := write(dir, "memory.max", m, "-memory"); err != nil {
				return err
			}
			if exists(dir, "memory.swap.max") {
				if err := write(dir, "memory.swap.max", "0", "-memory"); err != nil {
					return err
				}
			}
		} else {
			if err := write(dir, "memory.limit_in_bytes", m, "-memory"); err != nil {
				return err
			}
			if exists(dir, "memory.memsw.limit_in_bytes") {
				if err := write(dir, "memory.memsw.limit_in_bytes", m, "-memory"); err != nil {
					return err
				}
			}
		}
	}
	if c.Pids > 0 {
		if err := write(g.ctrls["pids"], "pids.max", strconv.Itoa(c.Pids), "-pids"); err != nil {
			return err
		}
	}
	return nil
}

// version is the cgroup version ctrl is used from, 0 if it is not.
func (g *Cgroup) version(ctrl string) int {
	dir, ok := g.ctrls[ctrl]
	if !ok {
		return 0
	}
	for _, d := range g.dirs {
		if d.path == dir {
			return d.version
		}
	}
	return 0
}

func write(dir, file, value, flag string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("jail: %s: writing %q to %s: %w", flag, value, filepath.Join(dir, file), err)
	}
	return nil
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// add moves process pid into every folder of the cgroup.
func (g *Cgroup) add(pid int) error {
	for _, d := range g.dirs {
		if err := os.WriteFile(filepath.Join(d.path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("jail: putting the jail in cgroup %s: %w", d.path, err)
		}
	}
	return nil
}

// Paths are the cgroup's folders, one per hierarchy.
func (g *Cgroup) Paths() []string {
	var ps []string
	for _, d := range g.dirs {
		ps = append(ps, d.path)
	}
	return ps
}

// remove removes the cgroup's folders. A cgroup whose last task has just
// been reaped can still be busy for a moment while the kernel lets go of
// it, so EBUSY is retried for up to two seconds.
func (g *Cgroup) remove() error {
	var errs []error
	for _, d := range g.dirs {
		if !d.made {
			continue
		}
		var err error
		for wait := time.Millisecond; ; wait *= 2 {
			err = unix.Rmdir(d.path)
			if !errors.Is(err, unix.EBUSY) || wait > time.Second {
				break
			}
			time.Sleep(wait)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("jail: removing cgroup %s: %w", d.path, err))
		}
	}
	g.dirs = nil
	return errors.Join(errs...)
}
