package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/snapshot"
)

// jailPattern is the test guest's disk pattern (PATTERN in
// images/testguest/src/virtio.h).
func jailPattern(off uint64) byte { return byte((off>>9)*7 + off*13 + 0x5a) }

// jailDisk makes a disk image of size bytes owned by uid.
func jailDisk(t *testing.T, path string, size, uid int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestJailDrive runs the test guest's virtio driver in a jail with a
// disk: it writes the pattern, reads it back, and the host finds it in
// the image; a readonly=on disk the jail's user can only read refuses the
// guest's write and is left as it was.
func TestJailDrive(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	before := mounts(t)

	disk, serial := filepath.Join(dir, "disk.img"), filepath.Join(dir, "serial")
	jailDisk(t, disk, 4<<20, 65534)
	status, _, stderr, err := jailed(t, "-id", "drive", "-uid", "65534", "-gid", "65534", "-base", base, "-memory", "256M", "-v",
		"--", "-kernel", g.ELF, "-mem", "64M", "-serial", "file:"+serial, "-drive", "file="+disk,
		"-append", "mode=virtio blk_sector=8 blk_n=16 blk_bytes=4096", "-v")
	out, _ := os.ReadFile(serial)
	if status != 0 || err != nil {
		t.Fatalf("govmm jail -- -drive file=%s = %d, %v, want 0\nserial:\n%s\nstderr:\n%s", disk, status, err, out, stderr)
	}
	for _, w := range []string{"virtio-blk wrote n=16", "virtio-blk read ok n=16", "virtio ok devices=1"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the jailed guest's serial output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(stderr, "seccomp filter on") || !strings.Contains(stderr, disk) {
		t.Errorf("govmm in the jail did not run under seccomp with Landlock naming the disk:\n%s", stderr)
	}
	img, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for off := uint64(8 * 512); off < 8*512+16*4096; off++ {
		if img[off] != jailPattern(off) {
			bad++
		}
	}
	if bad > 0 || img[0] != 0 {
		t.Errorf("the host's image differs from what the jailed guest wrote in %d bytes (first byte %#x)", bad, img[0])
	}

	// readonly=on: root's file, readable by others only.
	ro := filepath.Join(dir, "ro.img")
	if err := os.WriteFile(ro, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	status, _, stderr, err = jailed(t, "-id", "drive-ro", "-uid", "65534", "-gid", "65534", "-base", base,
		"--", "-kernel", g.ELF, "-mem", "64M", "-serial", "file:"+serial, "-drive", "file="+ro+",readonly=on",
		"-append", "mode=virtio blk_sector=8 blk_n=16 blk_bytes=4096")
	out, _ = os.ReadFile(serial)
	if status != 0 || err != nil || !strings.Contains(string(out), "virtio-blk ro: write refused") {
		t.Errorf("govmm jail -- -drive file=%s,readonly=on = %d, %v, want 0 and the write refused\nserial:\n%s\nstderr:\n%s", ro, status, err, out, stderr)
	}
	if img, _ := os.ReadFile(ro); !bytes.Equal(img, make([]byte, 4<<20)) {
		t.Errorf("the read-only image changed")
	}
	for _, id := range []string{"drive", "drive-ro"} {
		if left := leftovers(t, base, id, before); len(left) > 0 {
			t.Errorf("jail %s left %q behind", id, left)
		}
	}
}

// TestJailBadDevices: a disk, TAP or socket the jail cannot give govmm
// is a one-line error before anything is made, and leaves nothing.
func TestJailBadDevices(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	rootDisk := filepath.Join(dir, "root.img")
	if err := os.WriteFile(rootDisk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(dir, "taken.sock")
	if err := os.WriteFile(taken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	vm := []string{"--", "-kernel", g.ELF, "-mem", "64M", "-serial", "none"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"drive that does not exist", append(vm, "-drive", "file=/nonexistent/disk.img"), "-drive file=/nonexistent/disk.img: no such file or directory: give an existing disk image"},
		{"drive the user cannot write", append(vm, "-drive", "file="+rootDisk), "cannot read and write " + rootDisk},
		{"drive that is a folder", append(vm, "-drive", "file="+dir), "neither a file nor a block device"},
		{"TAP with a new namespace but no -tap", append([]string{"-netns", "new"}, append(vm, "-net", "tap,ifname=govmmjx0")...), "give -tap govmmjx0 too"},
		{"TAP that does not exist", append(vm, "-net", "tap,ifname=govmmjx0"), "no such TAP device"},
		{"api socket that exists", append(vm, "-api", taken), "-api " + taken + " exists on the host"},
		{"api socket at /", append(vm, "-api", "/govmm-test.sock"), "is /"},
		{"restore folder with no snapshot", []string{"--", "-restore", dir, "-serial", "none"}, "holds no snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "base")
			before := mounts(t)
			args := append([]string{"-id", "baddev", "-base", base, "-uid", "65534", "-gid", "65534"}, tt.args...)
			status, _, stderr, err := jailed(t, args...)
			if status == 0 || err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("govmm jail %q = %d, %v, want one line containing %q\nstderr:\n%s", args, status, err, tt.wantErr, stderr)
			}
			if left := leftovers(t, base, "baddev", before); len(left) > 0 {
				t.Errorf("govmm jail %q left %q behind", args, left)
			}
		})
	}
	if _, err := os.Stat(taken); err != nil {
		t.Errorf("the refused -api path is gone: %v", err)
	}
}

// jailStart runs govmm jail in the background; the channel gets its
// status and error when it ends.
type jailRun struct {
	done   chan struct{}
	status int
	err    error
	stderr bytes.Buffer
}

func jailStart(t *testing.T, args ...string) *jailRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r := &jailRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer cancel()
		r.status, r.err = run(ctx, append([]string{"jail"}, args...), nil, &bytes.Buffer{}, &r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitSocket waits until the control socket at path answers.
func waitSocket(t *testing.T, r *jailRun, path string) *api.Client {
	t.Helper()
	c := api.NewClient(path)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Info(ctx)
		cancel()
		if err == nil {
			return c
		}
		select {
		case <-r.done:
			t.Fatalf("the jail ended before its socket %s answered: %d, %v\nstderr:\n%s", path, r.status, r.err, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the jail's socket %s did not answer in 30 s: %v", path, err)
		}
	}
}

// jailCtl runs govmm ctl -api path args... from the host.
func jailCtl(t *testing.T, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	status, err := run(ctx, append([]string{"ctl", "-api", path}, args...), nil, &out, &errOut)
	if status != 0 || err != nil {
		t.Fatalf("govmm ctl -api %s %s = %d, %v\n%s", path, strings.Join(args, " "), status, err, errOut.String())
	}
	return out.String()
}

// TestJailAPI runs a jailed guest with -api and -snapshot-dir: govmm
// ctl -api PATH from the host sees it, pauses and resumes it, reads the
// jail's cgroup in its metrics and snapshots it into the snapshot
// folder; a second jail restores that snapshot read-only, with the
// saved guest's disk, and stop ends each. The socket's link and the jail's folders are gone afterwards.
func TestJailAPI(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base, sock, snaps := filepath.Join(dir, "base"), filepath.Join(dir, "vm.sock"), filepath.Join(dir, "snaps")
	disk := filepath.Join(dir, "disk.img")
	jailDisk(t, disk, 1<<20, 65534)
	before := mounts(t)
	r := jailStart(t, "-id", "api", "-uid", "65534", "-gid", "65534", "-base", base, "-memory", "256M", "-pids", "64",
		"--", "-kernel", g.ELF, "-mem", "64M", "-serial", "none", "-append", "mode=spin", "-api", sock, "-snapshot-dir", snaps,
		"-drive", "file="+disk)
	start := time.Now()
	waitSocket(t, r, sock)
	t.Logf("the jailed govmm's socket answered from the host %v after the start", time.Since(start).Round(time.Millisecond))
	var info api.Info
	if err := json.Unmarshal([]byte(jailCtl(t, sock, "info")), &info); err != nil || info.State != "running" || info.MemoryBytes != 64<<20 {
		t.Errorf("govmm ctl info = %+v, %v; want running with 64 MiB", info, err)
	}
	if err := json.Unmarshal([]byte(jailCtl(t, sock, "pause")), &info); err != nil || info.State != "paused" {
		t.Errorf("govmm ctl pause = %+v, %v; want paused", info, err)
	}
	if err := json.Unmarshal([]byte(jailCtl(t, sock, "resume")), &info); err != nil || info.State != "running" {
		t.Errorf("govmm ctl resume = %+v, %v; want running", info, err)
	}
	var mt struct {
		Cgroup *struct {
			Memory      int64 `json:"memory_bytes"`
			MemoryLimit int64 `json:"memory_limit_bytes"`
			CPU         int64 `json:"cpu_ns"`
			Tasks       int64 `json:"tasks"`
			TasksLimit  int64 `json:"tasks_limit"`
		} `json:"cgroup"`
	}
	m := jailCtl(t, sock, "metrics")
	if err := json.Unmarshal([]byte(m), &mt); err != nil || mt.Cgroup == nil {
		t.Errorf("govmm ctl metrics has no cgroup: %v\n%s", err, m)
	} else {
		c := mt.Cgroup
		if c.Memory <= 0 || c.MemoryLimit != 256<<20 || c.CPU <= 0 || c.Tasks <= 0 || c.TasksLimit != 64 {
			t.Errorf("the cgroup in govmm ctl metrics = %+v, want memory and CPU used, tasks running, limits 256 MiB and 64", *c)
		}
		t.Logf("cgroup in /v1/metrics: %+v", *c)
	}
	snap := filepath.Join(snaps, "s1")
	jailCtl(t, sock, "snapshot", snap)
	if _, err := os.Stat(filepath.Join(snap, snapshot.StateName)); err != nil {
		entries, _ := os.ReadDir(snap)
		t.Errorf("the snapshot is not on the host: %v (%v)", err, entries)
	}
	jailCtl(t, sock, "stop")
	<-r.done
	if r.err != nil {
		t.Errorf("the jail stopped by ctl stop = %d, %v\nstderr:\n%s", r.status, r.err, r.stderr.String())
	}

	// The snapshot, restored in a jail of its own, which holds the saved
	// guest's disk though no -drive is given.
	r = jailStart(t, "-id", "api-restore", "-uid", "65534", "-gid", "65534", "-base", base,
		"--", "-restore", snap, "-serial", "none", "-api", sock)
	waitSocket(t, r, sock)
	if err := json.Unmarshal([]byte(jailCtl(t, sock, "info")), &info); err != nil || info.State != "running" || !strings.Contains(info.Restored, snap) ||
		!strings.Contains(strings.Join(info.Devices, " "), disk) {
		t.Errorf("govmm ctl info of the restored guest = %+v, %v; want running, restored from %s, with its disk", info, err, snap)
	}
	jailCtl(t, sock, "stop")
	<-r.done
	if r.err != nil {
		t.Errorf("the restored jail stopped by ctl stop = %d, %v\nstderr:\n%s", r.status, r.err, r.stderr.String())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("the socket's link %s is left on the host", sock)
	}
	for _, id := range []string{"api", "api-restore"} {
		if left := leftovers(t, base, id, before); len(left) > 0 {
			t.Errorf("jail %s left %q behind", id, left)
		}
	}
}

// TestJailNetTAP runs the test guest's network driver in a jail with
// -net tap: in a network namespace the jail joins, where the TAP has an
// address, the guest pings it; with -netns new and -tap the TAP is moved
// in, and the guest's card comes up on it.
func TestJailNetTAP(t *testing.T) {
	g := requireJail(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs ip (iproute2)")
	}
	sh := func(args ...string) error {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	dir := t.TempDir()
	serial := filepath.Join(dir, "serial")

	t.Run("joined namespace", func(t *testing.T) {
		const ns, tap = "govmmjtns", "govmmjt1"
		if err := sh("netns", "add", ns); err != nil {
			t.Skip(err)
		}
		defer sh("netns", "del", ns)
		for _, a := range [][]string{{"-n", ns, "tuntap", "add", tap, "mode", "tap", "user", "65534"},
			{"-n", ns, "addr", "add", "10.0.0.1/24", "dev", tap}, {"-n", ns, "link", "set", tap, "up"}} {
			if err := sh(a...); err != nil {
				t.Fatal(err)
			}
		}
		status, _, stderr, err := jailed(t, "-id", "net", "-uid", "65534", "-gid", "65534", "-base", filepath.Join(dir, "base"),
			"-netns", "/var/run/netns/"+ns, "--", "-kernel", g.ELF, "-mem", "64M", "-serial", "file:"+serial, "-net", "tap,ifname="+tap,
			"-append", "mode=virtio net_me=0a000002 net_peer=0a000001 pings=3")
		out, _ := os.ReadFile(serial)
		if status != 0 || err != nil {
			t.Fatalf("govmm jail -netns %s -- -net tap,ifname=%s = %d, %v\nserial:\n%s\nstderr:\n%s", ns, tap, status, err, out, stderr)
		}
		for _, w := range []string{"virtio-net arp reply from 0a000001", "virtio-net ping reply seq=3", "virtio ok devices=1"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("serial output lacks %q:\n%s", w, out)
			}
		}
	})

	t.Run("new namespace", func(t *testing.T) {
		const tap = "govmmjt2"
		if err := sh("tuntap", "add", tap, "mode", "tap", "user", "65534"); err != nil {
			t.Skip(err)
		}
		defer sh("link", "del", tap)
		status, _, stderr, err := jailed(t, "-id", "net-new", "-uid", "65534", "-gid", "65534", "-base", filepath.Join(dir, "base"),
			"-netns", "new", "-tap", tap, "--", "-kernel", g.ELF, "-mem", "64M", "-serial", "file:"+serial, "-net", "tap,ifname="+tap,
			"-append", "mode=virtio")
		out, _ := os.ReadFile(serial)
		if status != 0 || err != nil {
			t.Fatalf("govmm jail -netns new -tap %s -- -net tap,ifname=%s = %d, %v\nserial:\n%s\nstderr:\n%s", tap, tap, status, err, out, stderr)
		}
		for _, w := range []string{"virtio-net mac=", "virtio ok devices=1"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("serial output lacks %q:\n%s", w, out)
			}
		}
		if err := sh("link", "show", tap); err != nil {
			t.Errorf("TAP %s is not back on the host: %v", tap, err)
		}
	})
}

// TestJailExec runs govmm exec in a jail, on the test guest (which ends
// with status 0 through the debug-exit device, as the agent ends the VM
// with the command's): the kernel and initrd are passed in, the cache is
// off, and the command's words after exec's -- stay the command's. On a
// PVM host the default kernel is refused at once, as govmm exec does.
func TestJailExec(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, []byte("not an initrd"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base")
	before := mounts(t)
	status, _, stderr, err := jailed(t, "-id", "exec", "-uid", "65534", "-gid", "65534", "-base", base, "-memory", "256M",
		"--", "exec", "-kernel", g.ELF, "-initrd", initrd, "-mem", "64M", "-timeout", "60s", "-v", "--", "echo", "--cache=x")
	if status != 0 || err != nil || !strings.Contains(stderr, "seccomp filter on") {
		t.Errorf("govmm jail -- exec -kernel guest.elf ... = %d, %v, want 0 under seccomp\nstderr:\n%s", status, err, stderr)
	}
	if detectHost() == kvm.HostPVM {
		status, _, stderr, err = jailed(t, "-id", "exec", "-uid", "65534", "-gid", "65534", "-base", base, "--", "exec", "--", "true")
		if status == 0 || err == nil || !strings.Contains(err.Error(), "this is a PVM host") || strings.Contains(err.Error(), "\n") {
			t.Errorf("govmm jail -- exec -- true on a PVM host = %d, %v, want the one-line refusal\nstderr:\n%s", status, err, stderr)
		}
	}
	if left := leftovers(t, base, "exec", before); len(left) > 0 {
		t.Errorf("the jail left %q behind", left)
	}
}

// TestJailNetUser: -net user in a jail (the host's network namespace):
// the guest gets its address by DHCP and reaches listeners on the host's
// loopback through 192.168.127.254, with Landlock giving govmm no file
// for its network but /etc/resolv.conf (the DNS relay's name server).
func TestJailNetUser(t *testing.T) {
	g := requireJail(t)
	dir := t.TempDir()
	base, serial := filepath.Join(dir, "base"), filepath.Join(dir, "serial")
	udpPort, tcpPort, got := hostListeners(t)
	cmdline := fmt.Sprintf("mode=virtio net_dhcp=1 pings=1 net_host=c0a87ffe udp_port=%d tcp_port=%d", udpPort, tcpPort)
	status, _, stderr, err := jailed(t, "-id", "netuser", "-uid", "65534", "-gid", "65534", "-base", base,
		"--", "-kernel", g.ELF, "-mem", "128M", "-serial", "file:"+serial, "-net", "user", "-append", cmdline, "-v")
	out, _ := os.ReadFile(serial)
	if status != 0 || err != nil {
		t.Fatalf("govmm jail ... -- -net user = %d, %v, want 0\nserial:\n%s\nstderr:\n%s", status, err, out, stderr)
	}
	for _, w := range []string{"virtio-net dhcp ip=c0a87f02 router=c0a87f01", "virtio-net ping reply seq=1",
		"virtio-net udp reply from c0a87ffe: hello udp", "virtio-net tcp reply: hello tcp"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("serial output lacks %q:\n%s", w, out)
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case <-got:
		default:
			t.Errorf("only %d of the host's listeners heard from the jailed guest", i)
		}
	}
	var confined string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "files confined to") {
			confined = l
		}
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil && !strings.Contains(confined, "/etc/resolv.conf") {
		t.Errorf("Landlock's files for -net user = %q, want /etc/resolv.conf among them", confined)
	}
	for _, never := range []string{"/etc/hosts", "/etc/nsswitch.conf"} {
		if strings.Contains(confined, never) {
			t.Errorf("Landlock's files for -net user = %q: %s is no longer read", confined, never)
		}
	}
}
