package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/sandbox"
)

// The jail tests run govmm jail as root, as a user would, through run
// (which runs govmm as a child process: see main_test.go).

// requireJail skips unless KVM works and this is root, and makes sure
// the host has a cgroup file system: testvm's emulated machine mounts
// none, so there (and only there) a cgroup2 is mounted at
// /sys/fs/cgroup.
func requireJail(t *testing.T) testguest.Guests {
	t.Helper()
	kvmtest.Require(t)
	if os.Geteuid() != 0 {
		t.Skip("govmm jail needs root (namespaces, mounts, cgroups, another uid)")
	}
	if self, err := os.Executable(); err == nil {
		if f, err := elf.Open(self); err == nil {
			dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
			f.Close()
			if dynamic {
				t.Skip("the test binary is dynamically linked (cgo is on), and a jail holds no shared libraries: run the jail tests with CGO_ENABLED=0, as make test does")
			}
		}
	}
	cgroupOnce.Do(func() {
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil || strings.Contains(string(mi), " - cgroup") {
			return
		}
		if !kvmtest.SoftwareCPU() {
			cgroupErr = "no cgroup file system is mounted on this host"
			return
		}
		if out, err := exec.Command("mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup").CombinedOutput(); err != nil {
			cgroupErr = fmt.Sprintf("the emulated machine has no cgroups and mounting cgroup2 failed: %v %s", err, out)
		}
	})
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	if cgroupErr != "" {
		t.Skip(cgroupErr)
	}
	return g
}

var (
	cgroupOnce sync.Once
	cgroupErr  string
)

// jailed runs govmm jail with args and returns its status, error and
// output.
func jailed(t *testing.T, args ...string) (status int, stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	status, err = run(ctx, append([]string{"jail"}, args...), nil, &out, &errOut)
	return status, out.String(), errOut.String(), err
}

// leftovers lists what a jail named id left behind: its folder under
// base, cgroups named govmm-id, mounts that were not there before.
func leftovers(t *testing.T, base, id string, mountsBefore []string) []string {
	t.Helper()
	var left []string
	if _, err := os.Stat(base); err == nil {
		left = append(left, base)
	}
	for _, m := range cgroupMounts(t) {
		_ = filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if d.Name() == "govmm-"+id {
				left = append(left, p)
			}
			if strings.Count(strings.TrimPrefix(p, m), "/") >= 3 {
				return fs.SkipDir
			}
			return nil
		})
	}
	for _, m := range mounts(t) {
		if !slices.Contains(mountsBefore, m) {
			left = append(left, "mount "+m)
		}
	}
	return left
}

// mounts are this mount namespace's mount points.
func mounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			ms = append(ms, f[4])
		}
	}
	return ms
}

// cgroupMounts are the mount points of cgroup hierarchies.
func cgroupMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ms []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) > 4 && (strings.HasPrefix(post, "cgroup ") || strings.HasPrefix(post, "cgroup2 ")) {
			ms = append(ms, f[4])
		}
	}
	return ms
}

// TestJailRunsGuest runs the test guest in a jail with every limit, and
// checks its output, the cgroup's usage in -v and that nothing is left.
// -fsize is below -mem: guest RAM is then anonymous memory, not a memory
// file the limit would refuse.
func TestJailRunsGuest(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	base, serial := filepath.Join(dir, "base"), filepath.Join(dir, "serial")
	before := mounts(t)
	status, _, stderr, err := jailed(t, "-id", "runs", "-uid", "65534", "-gid", "65534", "-base", base, "-v",
		"-memory", "256M", "-cpu-quota", "1", "-pids", "64", "-cpuset", "0", "-nofile", "64", "-fsize", "16M",
		"--", "-kernel", g.ELF, "-mem", "64M", "-append", "mode=check loops=1000", "-serial", "file:"+serial, "-v")
	if status != 0 || err != nil {
		t.Fatalf("govmm jail ... -- -kernel guest.elf = %d, %v, want 0\nstderr:\n%s", status, err, stderr)
	}
	out, _ := os.ReadFile(serial)
	if !strings.Contains(string(out), "ring3 ok") {
		t.Errorf("the jailed guest's serial output lacks %q:\n%s", "ring3 ok", out)
	}
	for _, want := range []string{"cgroup usage: memory peak", "of 256.0 MiB", "tasks peak", "seccomp filter on", "landlock"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("govmm jail -v's stderr lacks %q:\n%s", want, stderr)
		}
	}
	if left := leftovers(t, base, "runs", before); len(left) > 0 {
		t.Errorf("the jail left %q behind", left)
	}
}

// TestJailInside runs jail-probe in govmm's place: it is PID 1, runs as
// the given uid with no capabilities and no_new_privs, sees only its own
// files and its own network namespace.
func TestJailInside(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	hostFile := filepath.Join(dir, "host-only")
	if err := os.WriteFile(hostFile, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	status, stdout, stderr, err := jailed(t, "-id", "inside", "-uid", "1234", "-gid", "2345", "-base", filepath.Join(dir, "base"),
		"-netns", "new", "-nofile", "77", "--", jailProbeArg, "-path", hostFile, "-path", g.ELF, "-path", "/etc/passwd")
	if status != 0 || err != nil {
		t.Fatalf("govmm jail ... -- jail-probe = %d, %v, want 0\nstderr:\n%s", status, err, stderr)
	}
	var p jailProbe
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("jail-probe's output: %v\n%s", err, stdout)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"pid", p.PID, 1},
		{"uid", p.UID, 1234},
		{"euid", p.EUID, 1234},
		{"gid", p.GID, 2345},
		{"groups", len(p.Groups), 0},
		{"hostname", p.Hostname, "inside"},
		{"effective capabilities", p.Status["CapEff"], "0000000000000000"},
		{"permitted capabilities", p.Status["CapPrm"], "0000000000000000"},
		{"bounding set", p.Status["CapBnd"], "0000000000000000"},
		{"ambient capabilities", p.Status["CapAmb"], "0000000000000000"},
		{"no_new_privs", p.Status["NoNewPrivs"], "1"},
		{"open-file limit", p.NoFile, uint64(77)},
		{"a host file outside the jail", strings.Contains(p.Paths[hostFile], "no such file"), true},
		{"/etc/passwd", strings.Contains(p.Paths["/etc/passwd"], "no such file"), true},
		{"interfaces", strings.Join(p.Interfaces, ","), "lo"},
		{"network namespace is the host's", p.NetNS == hostNS || p.NetNS == "", false},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("in the jail, %s = %v, want %v", c.what, c.got, c.want)
		}
	}
	// Only govmm, /proc, the module folders host detection reads, the
	// working folder's path and the devices govmm uses.
	wd, _ := os.Getwd()
	for _, f := range p.Files {
		ok := f == "/" || f == vmmPathInJail || strings.HasPrefix(f, "/sys") || f == "/dev" || f == "/dev/kvm" ||
			strings.HasPrefix(wd+"/", f+"/") || f == wd
		if !ok {
			t.Errorf("the jail holds %s, which govmm was not given", f)
		}
	}
}

const vmmPathInJail = "/govmm"

// TestJailDeniedCall makes the jailed VMM, once its guest runs, call
// execve and open a file: its seccomp filter kills it with the line that
// names the call, and the jailer says so and removes the jail.
func TestJailDeniedCall(t *testing.T) {
	g := requireJail(t)
	for _, call := range []struct{ flag, name string }{{"execve", "execve (59)"}, {"open:/govmm", "openat (257)"}} {
		t.Run(call.flag, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			before := mounts(t)
			status, _, stderr, err := jailed(t, "-id", "denied", "-uid", "65534", "-gid", "65534", "-base", base, "-pids", "64",
				"--", "-kernel", g.ELF, "-mem", "64M", "-append", "mode=spin", "-serial", "none", "-test-denied-call", call.flag)
			if status != sandbox.ExitDenied || err == nil || !strings.Contains(err.Error(), "seccomp filter denies") {
				t.Errorf("govmm jail with -test-denied-call %s = %d, %v, want %d and the seccomp error", call.flag, status, err, sandbox.ExitDenied)
			}
			if want := sandbox.DeniedPrefix + call.name; !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
			if left := leftovers(t, base, "denied", before); len(left) > 0 {
				t.Errorf("the jail left %q behind", left)
			}
		})
	}
}

// TestJailMemoryLimit: a limit below the guest's RAM fails at start, in
// one line, leaving nothing; a process that outgrows its limit is killed
// by the OOM killer, alone, and the jailer says so.
func TestJailMemoryLimit(t *testing.T) {
	g := requireJail(t)
	base := filepath.Join(t.TempDir(), "base")
	before := mounts(t)
	status, _, stderr, err := jailed(t, "-id", "small", "-uid", "65534", "-gid", "65534", "-base", base, "-memory", "48M",
		"--", "-kernel", g.ELF, "-mem", "64M", "-serial", "none")
	if status == 0 || err == nil || !strings.Contains(err.Error(), "is less than the guest's RAM") || strings.Contains(err.Error(), "\n") {
		t.Errorf("govmm jail -memory 48M -- -mem 64M = %d, %v, want one line saying the limit is below the guest's RAM\nstderr:\n%s", status, err, stderr)
	}
	status, _, stderr, err = jailed(t, "-id", "oom", "-uid", "65534", "-gid", "65534", "-base", base, "-memory", "64M", "-v",
		"--", jailProbeArg, "-alloc", "256M")
	if status != 137 || err == nil || !strings.Contains(err.Error(), "OOM killer") {
		t.Errorf("govmm jail -memory 64M -- jail-probe -alloc 256M = %d, %v, want 137 and the OOM error\nstderr:\n%s", status, err, stderr)
	}
	for _, id := range []string{"small", "oom"} {
		if left := leftovers(t, base, id, before); len(left) > 0 {
			t.Errorf("jail %s left %q behind", id, left)
		}
	}
}

// TestJailTenAtOnce runs ten jailed guests together, each in a cgroup of
// its own, and checks every cgroup is gone afterwards.
func TestJailTenAtOnce(t *testing.T) {
	g := requireJail(t)
	base := filepath.Join(t.TempDir(), "base")
	before := mounts(t)
	type result struct {
		status int
		err    error
		stderr string
	}
	results := make([]result, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			s, _, stderr, err := jailed(t, "-id", "ten-"+strconv.Itoa(i), "-uid", strconv.Itoa(10000+i), "-gid", strconv.Itoa(10000+i),
				"-base", base, "-memory", "128M", "-pids", "64", "-v", "--", "-kernel", g.ELF, "-mem", "64M", "-append", "mode=check loops=1000", "-serial", "none")
			results[i] = result{s, err, stderr}
		})
	}
	wg.Wait()
	cgroups := map[string]int{}
	for i, r := range results {
		if r.status != 0 || r.err != nil {
			t.Errorf("jail ten-%d = %d, %v, want 0\nstderr:\n%s", i, r.status, r.err, r.stderr)
		}
		_, after, _ := strings.Cut(r.stderr, "cgroup [")
		paths, _, _ := strings.Cut(after, "]")
		for _, p := range strings.Fields(paths) {
			if !strings.HasSuffix(p, "/govmm-ten-"+strconv.Itoa(i)) {
				t.Errorf("jail ten-%d used cgroup %s", i, p)
			}
			cgroups[p]++
		}
	}
	for p, n := range cgroups {
		if n != 1 {
			t.Errorf("cgroup %s was used by %d jails", p, n)
		}
	}
	for i := range results {
		if left := leftovers(t, base, "ten-"+strconv.Itoa(i), before); len(left) > 0 {
			t.Errorf("jail ten-%d left %q behind", i, left)
		}
	}
}

// TestJailBadFlags: each mistake is a one-line error and leaves nothing
// behind.
func TestJailBadFlags(t *testing.T) {
	g := requireJail(t)
	// A controller the host lacks: on a hybrid host like these the v2
	// mount has no memory controller; on a v2-only host there is no v1.
	version := "2"
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && !strings.Contains(string(b), " - cgroup ") {
		version = "1"
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"missing uid", []string{"-gid", "1", "--", "-kernel", g.ELF}, "no -uid"},
		{"missing gid", []string{"-uid", "1", "--", "-kernel", g.ELF}, "no -gid"},
		{"kernel that does not exist", []string{"-uid", "1", "-gid", "1", "--", "-kernel", "/nonexistent/kernel"}, "no such file"},
		{"cgroup controller the host lacks", []string{"-uid", "1", "-gid", "1", "-cgroup-version", version, "-memory", "200M", "--", "-kernel", g.ELF, "-mem", "64M"}, "no memory cgroup controller in cgroup v" + version},
		{"netns that does not exist", []string{"-uid", "1", "-gid", "1", "-netns", "/nonexistent/ns", "--", "-kernel", g.ELF}, "-netns"},
		{"TAP without a namespace", []string{"-uid", "1", "-gid", "1", "-tap", "tap9", "--", "-kernel", g.ELF}, "needs -netns new"},
		{"no govmm flags", []string{"-uid", "1", "-gid", "1"}, "no --"},
		{"bad id", []string{"-id", "../x", "-uid", "1", "-gid", "1", "--", "-kernel", g.ELF}, "-id"},
		{"bad cgroup parent", []string{"-uid", "1", "-gid", "1", "-pids", "10", "-cgroup-parent", "/nonexistent-parent", "--", "-kernel", g.ELF}, "-cgroup-parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			before := mounts(t)
			args := append([]string{"-id", "bad", "-base", base}, tt.args...)
			status, _, stderr, err := jailed(t, args...)
			if status == 0 || err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("govmm jail %q = %d, %v, want one line containing %q\nstderr:\n%s", args, status, err, tt.wantErr, stderr)
			}
			if left := leftovers(t, base, "bad", before); len(left) > 0 {
				t.Errorf("govmm jail %q left %q behind", args, left)
			}
		})
	}
}

// TestJailTAP moves a TAP device into the jail's network namespace, where
// the VMM sees it beside lo, and back to the host when the jail ends.
func TestJailTAP(t *testing.T) {
	requireJail(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs ip (iproute2) to make a TAP device")
	}
	const tap = "govmmjt0"
	if out, err := exec.Command(ip, "tuntap", "add", tap, "mode", "tap").CombinedOutput(); err != nil {
		t.Skipf("cannot make a TAP device here: %v %s", err, out)
	}
	defer exec.Command(ip, "link", "del", tap).Run()
	status, stdout, stderr, err := jailed(t, "-id", "tap", "-uid", "65534", "-gid", "65534", "-base", filepath.Join(t.TempDir(), "base"),
		"-netns", "new", "-tap", tap, "--", jailProbeArg)
	if status != 0 || err != nil {
		t.Fatalf("govmm jail -tap = %d, %v\nstderr:\n%s", status, err, stderr)
	}
	var p jailProbe
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	slices.Sort(p.Interfaces)
	if got := strings.Join(p.Interfaces, ","); got != tap+",lo" {
		t.Errorf("interfaces in the jail = %s, want %s,lo", got, tap)
	}
	if out, err := exec.Command(ip, "link", "show", tap).CombinedOutput(); err != nil {
		t.Errorf("TAP %s is not back on the host after the jail: %v %s", tap, err, out)
	}
}
