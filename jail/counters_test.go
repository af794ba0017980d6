package jail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeCounters are counter files' contents by "ctrl/file".
type fakeCounters struct {
	versions map[string]int
	files    map[string]string
}

func (f fakeCounters) version(ctrl string) int       { return f.versions[ctrl] }
func (f fakeCounters) read(ctrl, file string) string { return f.files[ctrl+"/"+file] }

func TestReadUsage(t *testing.T) {
	v1 := fakeCounters{map[string]int{"memory": 1, "cpu": 1, "cpuacct": 1, "pids": 1}, map[string]string{
		"memory/memory.usage_in_bytes":     "1048576",
		"memory/memory.max_usage_in_bytes": "2097152",
		"memory/memory.limit_in_bytes":     "9223372036854771712", // no limit
		"memory/memory.oom_control":        "oom_kill_disable 0\nunder_oom 0\noom_kill 2",
		"cpu/cpu.stat":                     "nr_periods 10\nnr_throttled 3\nthrottled_time 5000000",
		"cpuacct/cpuacct.usage":            "7000000",
		"pids/pids.current":                "4",
		"pids/pids.max":                    "max",
	}}
	got := readUsage(v1)
	want := Usage{MemoryCurrent: 1 << 20, MemoryPeak: 2 << 20, MemoryLimit: -1, OOMKills: 2, CPUTime: 7 * time.Millisecond,
		Periods: 10, Throttled: 3, ThrottledTime: 5 * time.Millisecond, PidsCurrent: 4, PidsPeak: -1, PidsLimit: -1}
	if got != want {
		t.Errorf("v1 usage = %+v, want %+v", got, want)
	}
	v2 := fakeCounters{map[string]int{"memory": 2, "cpu": 2, "pids": 2}, map[string]string{
		"memory/memory.current": "4096", "memory/memory.peak": "8192", "memory/memory.max": "268435456",
		"memory/memory.events": "low 0\nhigh 0\nmax 1\noom 0\noom_kill 0",
		"cpu/cpu.stat":         "usage_usec 1500\nnr_periods 2\nnr_throttled 0\nthrottled_usec 0",
		"pids/pids.current":    "9", "pids/pids.peak": "11", "pids/pids.max": "64",
	}}
	got = readUsage(v2)
	want = Usage{MemoryCurrent: 4096, MemoryPeak: 8192, MemoryLimit: 256 << 20, OOMKills: 0, CPUTime: 1500 * time.Microsecond,
		Periods: 2, Throttled: 0, ThrottledTime: 0, PidsCurrent: 9, PidsPeak: 11, PidsLimit: 64}
	if got != want {
		t.Errorf("v2 usage = %+v, want %+v", got, want)
	}
	if got := readUsage(nil); got.MemoryPeak != -1 || got.String() != "nothing counted (no cgroup controllers)" {
		t.Errorf("no controllers: %+v %q", got, got.String())
	}
}

// TestCountersFromEnv reads real files through descriptors, as a jailed
// VMM does, twice: a counter that changes is read anew.
func TestCountersFromEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pids.current")
	if err := os.WriteFile(path, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := countersEnv("pids@2/pids.current", int(f.Fd()))
	value, _ := strings.CutPrefix(env, CountersEnv+"=")
	c, err := CountersFromEnv(value)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Usage().PidsCurrent; got != 3 {
		t.Errorf("tasks = %d, want 3", got)
	}
	if err := os.WriteFile(path, []byte("12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := c.Usage().PidsCurrent; got != 12 {
		t.Errorf("tasks after a change = %d, want 12", got)
	}
	if c, err := CountersFromEnv(""); c != nil || err != nil {
		t.Errorf("CountersFromEnv(\"\") = %v, %v, want nil, nil (not in a jail)", c, err)
	}
	for _, bad := range []string{"pids/pids.current=5", "pids@3/pids.current=5", "pids@1/pids.current=x", "pids@1/pids.current=1"} {
		if _, err := CountersFromEnv(bad); err == nil {
			t.Errorf("CountersFromEnv(%q) took it", bad)
		}
	}
}

// TestBindsOrder: a folder is mounted before what lies under it, govmm
// first.
func TestBindsOrder(t *testing.T) {
	c := &initConfig{Program: "/usr/bin/govmm", ReadOnly: []string{"/a/b/kernel"}, ReadOnlyDirs: []string{"/a/snaps/s1"},
		WritableDirs: []string{"/a/snaps"}, APIDir: "/run/j/api", APIMount: "/a/b"}
	var got []string
	for _, b := range binds(c) {
		got = append(got, b.dst)
	}
	if s := strings.Join(got, " "); s != "/govmm /a/b /a/snaps /a/b/kernel /a/snaps/s1" {
		t.Errorf("binds in order %s", s)
	}
}

func TestCheckPlaces(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		c    Config
		want string
	}{
		{Config{WritableDirs: []string{"/"}}, "is /"},
		{Config{ReadOnlyDirs: []string{"/dev"}, Devices: []string{"/dev/kvm"}}, "holds /dev/kvm"},
		{Config{APISocket: "/nonexistent/x.sock"}, "does not exist"},
		{Config{APISocket: dir}, "exists on the host"},
		{Config{APISocket: "relative.sock"}, "absolute"},
		{Config{APISocket: filepath.Join(dir, "vm.sock"), Devices: []string{"/dev/kvm"}}, ""},
	} {
		err := tt.c.checkPlaces()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("checkPlaces(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}
