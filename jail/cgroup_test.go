package jail

import (
	"strconv"
	"strings"
	"testing"
)

// Hosts' /proc/self/mountinfo and /proc/self/cgroup, cut to what matters.
const (
	hybridMountinfo = `30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
	hybridCgroup = `8:pids:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
9:name=systemd:/
0::/`
	v2Mountinfo = `25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`
	v2Cgroup    = `0::/user.slice/session-1.scope`
	// A container's view: the hierarchy's root is its own cgroup.
	nestedMountinfo = `40 30 0:33 /docker/xyz /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory`
	nestedCgroup    = `4:memory:/docker/xyz`
)

func TestParseHierarchies(t *testing.T) {
	tests := []struct {
		name, mountinfo, cgroup string
		want                    string // version mount own [controllers], one per line
	}{
		{"hybrid", hybridMountinfo, hybridCgroup, `1 /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu [cpu]
1 /sys/fs/cgroup/cpuacct /sys/fs/cgroup/cpuacct [cpuacct]
1 /sys/fs/cgroup/memory /sys/fs/cgroup/memory/process_api/abc [memory]
1 /sys/fs/cgroup/pids /sys/fs/cgroup/pids [pids]
2 /sys/fs/cgroup/unified /sys/fs/cgroup/unified []`},
		{"v2", v2Mountinfo, v2Cgroup, `2 /sys/fs/cgroup /sys/fs/cgroup/user.slice/session-1.scope []`},
		{"nested", nestedMountinfo, nestedCgroup, `1 /sys/fs/cgroup/memory /sys/fs/cgroup/memory [memory]`},
		{"none", "22 1 0:5 / / rw - ext4 /dev/vda rw", "0::/", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for _, h := range parseHierarchies(tt.mountinfo, tt.cgroup) {
				var cs []string
				for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids"} {
					if h.controllers[c] {
						cs = append(cs, c)
					}
				}
				lines = append(lines, strings.TrimSpace(strings.Join([]string{strconv.Itoa(h.version), h.mount, h.own, "[" + strings.Join(cs, " ") + "]"}, " ")))
			}
			if got := strings.Join(lines, "\n"); got != tt.want {
				t.Errorf("parseHierarchies(%s) =\n%s\nwant\n%s", tt.name, got, tt.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	hybrid := parseHierarchies(hybridMountinfo, hybridCgroup)
	hybrid[len(hybrid)-1].controllers["hugetlb"] = true // what these hosts' v2 offers
	v2 := parseHierarchies(v2Mountinfo, v2Cgroup)
	for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
		v2[0].controllers[c] = true
	}
	tests := []struct {
		name     string
		hs       []hierarchy
		version  int
		required []string
		want     string // controller:version, or the error's start
	}{
		{"hybrid picks v1", hybrid, 0, []string{"memory", "cpu", "pids"}, "cpu:1 memory:1 pids:1"},
		{"hybrid has no v2 memory", hybrid, 2, []string{"memory"}, "jail: this host has no memory cgroup controller in cgroup v2"},
		{"hybrid has no cpuset hierarchy", hybrid, 0, []string{"cpuset"}, "jail: this host has no cpuset cgroup controller"},
		{"v2", v2, 0, []string{"memory", "cpuset"}, "cpuset:2 memory:2"},
		{"v2 has no v1", v2, 1, []string{"pids"}, "jail: this host has no pids cgroup controller in cgroup v1"},
		{"nothing mounted", nil, 0, []string{"pids"}, "jail: this host has no pids cgroup controller: no cgroup file system is mounted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pick(tt.hs, tt.version, tt.required, nil)
			var s string
			if err != nil {
				s = err.Error()
			} else {
				var parts []string
				for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
					if h := got[c]; h != nil {
						parts = append(parts, c+":"+strconv.Itoa(h.version))
					}
				}
				s = strings.Join(parts, " ")
			}
			if !strings.HasPrefix(s, tt.want) {
				t.Errorf("pick(%s, v%d, %q) = %q, want %q", tt.name, tt.version, tt.required, s, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{ID: "vm1", BaseDir: "/run/x", UID: 1, GID: 1, Program: "/proc/self/exe"}
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"good", func(*Config) {}, ""},
		{"no uid", func(c *Config) { c.UID = -1 }, "no -uid"},
		{"no gid", func(c *Config) { c.GID = -1 }, "no -gid"},
		{"id with a slash", func(c *Config) { c.ID = "a/b" }, "-id"},
		{"relative base", func(c *Config) { c.BaseDir = "run" }, "-base"},
		{"missing kernel", func(c *Config) { c.ReadOnly = []string{"/nonexistent/k"} }, "no such file"},
		{"relative file", func(c *Config) { c.ReadOnly = []string{"k"} }, "not an absolute path"},
		{"not a device", func(c *Config) { c.Devices = []string{"/proc/self/exe"} }, "not a device"},
		{"serial in a missing folder", func(c *Config) { c.Writable = []string{"/nonexistent/serial"} }, "does not exist"},
		{"missing netns", func(c *Config) { c.NetNS = "/nonexistent/ns" }, "-netns"},
		{"tap without netns", func(c *Config) { c.TAP = "tap0" }, "needs -netns new"},
		{"negative quota", func(c *Config) { c.Cgroup.CPUs = -1 }, "-cpu-quota"},
		{"cgroup v3", func(c *Config) { c.Cgroup.Version = 3 }, "-cgroup-version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("validate(%s) = %v, want nil", tt.name, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Errorf("validate(%s) = %v, want one line containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestUsageString(t *testing.T) {
	none := Usage{MemoryPeak: -1, MemoryLimit: -1, OOMKills: -1, CPUTime: -1, Periods: -1, Throttled: -1, ThrottledTime: -1, PidsPeak: -1, PidsLimit: -1}
	all := Usage{MemoryPeak: 3 << 20, MemoryLimit: 256 << 20, OOMKills: 0, CPUTime: 41e6, Periods: 10, Throttled: 2, ThrottledTime: 5e6, PidsPeak: 9, PidsLimit: 64}
	tests := []struct {
		u    Usage
		want string
	}{
		{none, "nothing counted (no cgroup controllers)"},
		{all, "memory peak 3.0 MiB of 256.0 MiB, 0 OOM kills; CPU 41ms; throttled in 2 of 10 quota periods (5ms); tasks peak 9 of 64"},
	}
	for _, tt := range tests {
		if got := tt.u.String(); got != tt.want {
			t.Errorf("Usage(%+v).String() = %q, want %q", tt.u, got, tt.want)
		}
	}
}
