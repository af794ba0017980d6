package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/machine/machinetest"
)

// TestLinuxVirtioSnapshotRestoreMigrate: Debian's kernel with a virtio-blk disk
// and virtio-rng (Linux's own drivers: MSI-X, EVENT_IDX, and khwrngd
// keeping an entropy request in flight) is snapshotted at its agent's
// prompt and stopped; the snapshot is restored in a new govmm on a copy
// of the disk, where Linux writes 256 KiB of random bytes to the disk
// and, its page cache dropped, reads them back through the restored
// queue, and reads the entropy device: the host finds in the
// disk copy what the guest read back. Then the same over a live
// migration between two govmm processes sharing the disk. Full Linux:
// in the emulated machine on PVM hosts.
func TestLinuxVirtioSnapshotRestoreMigrate(t *testing.T) {
	cache := requireImages(t)
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	sock := filepath.Join(dir, "src.sock")
	disk, clone := filepath.Join(dir, "disk.img"), filepath.Join(dir, "clone.img")
	if err := os.WriteFile(disk, append([]byte("GOVMM-DISK-"), make([]byte, 16<<20-11)...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	src, _ := startLinux(t, true, append(linuxArgs(t, cache), "-drive", "file="+disk, "-rng", "on", "-api", sock, "-snapshot-dir", snaps)...)
	snap, err := api.NewClient(sock).Snapshot(ctx, api.SnapshotRequest{Dir: filepath.Join(snaps, "shell")})
	if err != nil {
		t.Fatalf("snapshot: %v\nstderr:\n%s", err, src.stderr.String())
	}
	t.Logf("snapshot of Linux with virtio-blk and virtio-rng: %d pages, %d-byte state, paused %v", snap.Pages, snap.StateBytes, snap.Paused)
	if _, err := api.NewClient(sock).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	src.end(t)
	machinetest.CopyFile(t, disk, clone)

	g, in := startLinux(t, false, "-restore", filepath.Join(snaps, "shell"), "-cache", cache, "-drive", "file="+clone, "-rng", "on")
	diskIORuns(t, g, in, clone)

	// Migrated, the disk shared by both sides.
	sock2 := filepath.Join(dir, "src2.sock")
	src2, _ := startLinux(t, true, append(linuxArgs(t, cache), "-drive", "file="+disk, "-rng", "on", "-api", sock2)...)
	addr := freePort(t)
	dst, in := startLinux(t, false, "-incoming", "tcp:"+addr, "-mem", "512M", "-cache", cache, "-drive", "file="+disk, "-rng", "on")
	dst.waitFor(t, "waiting for a migration on")
	res, err := api.NewClient(sock2).Migrate(ctx, api.MigrateRequest{URI: "tcp:" + addr}, nil)
	if err != nil {
		t.Fatalf("migrate: %v\nsource:\n%s\ndestination:\n%s", err, src2.stderr.String(), dst.stderr.String())
	}
	t.Logf("migrated Linux with virtio-blk and virtio-rng: %d rounds, %.1f MiB, downtime %v", res.Rounds, float64(res.SentBytes)/(1<<20), res.Downtime)
	src2.end(t)
	diskIORuns(t, dst, in, disk)
}

// diskIORuns has the guest at its agent's prompt write 256 KiB of random
// bytes to its virtio-blk disk and, its page cache dropped, read them
// back through the device (u-root's dd has no O_DIRECT), and read the
// entropy device; the host then finds in the disk image what the guest
// read back.
func diskIORuns(t *testing.T, g *govmmRun, in *os.File, image string) {
	t.Helper()
	cmd := "echo restored $((6*7)) up; " +
		"dd if=/dev/urandom of=/tmp/r bs=4096 count=64 2>/dev/null; " +
		"dd if=/tmp/r of=/dev/vda bs=4096 seek=16 conv=notrunc oflag=sync 2>/dev/null && echo WROTE-OK; " +
		"sync; echo 3 > /proc/sys/vm/drop_caches; " +
		"dd if=/dev/vda of=/tmp/b bs=4096 skip=16 count=64 2>/dev/null; " +
		"cmp /tmp/r /tmp/b && echo SAME-OK; md5sum /tmp/b; " +
		"echo RNG-$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)-END\n"
	if _, err := in.WriteString(cmd); err != nil {
		t.Fatal(err)
	}
	g.waitOut(t, images.AgentExit+" 0", 2*time.Minute)
	out := g.out.String()
	for _, want := range []string{"restored 42 up", "WROTE-OK", "SAME-OK", "RNG-32-END"} {
		if !strings.Contains(out, want) {
			t.Errorf("the guest's console lacks %q:\n%s", want, out)
		}
	}
	g.end(t)
	var sum string // md5sum's line for /tmp/b: the hash first
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == "/tmp/b" {
			sum = f[0]
		}
	}
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", md5.Sum(img[16*4096:80*4096])); sum != want {
		t.Errorf("the guest read back MD5 %q; the disk image holds %s there", sum, want)
	}
	if !bytes.HasPrefix(img, []byte("GOVMM-DISK-")) {
		t.Errorf("the disk image's first bytes changed")
	}
}

// startLinuxIn is startLinux with govmm run on a thread in network
// namespace ns, so that the TAP it opens by name is ns's.
func startLinuxIn(t *testing.T, ns netns.NsHandle, args ...string) (*govmmRun, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	g := &govmmRun{out: newRoundsOut(), stderr: machinetest.NewConsole(), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	entered := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		err := netns.Set(ns)
		entered <- err
		if err != nil {
			g.done <- err
			return
		}
		st, err := run(ctx, append([]string{"-serial", "stdio", "-v"}, args...), r, g.out, g.stderr)
		g.status = st
		g.done <- err
	}()
	if err := <-entered; err != nil {
		t.Fatalf("entering the test's network namespace: %v", err)
	}
	return g, w
}

// TestLinuxVirtioNetSnapshotRestore: Debian's kernel with a virtio-net
// card on a TAP in a network namespace of the test's own (Linux's driver
// with merged receive buffers and the checksum and segmentation
// offloads), its address set and a ping answered, is snapshotted at its
// agent's prompt and stopped; restored in a new govmm on the same TAP,
// Linux pings the peer again and downloads 4 MiB over TCP through the
// restored queues, hash-checked. Full Linux: in the emulated machine on
// PVM hosts.
func TestLinuxVirtioNetSnapshotRestore(t *testing.T) {
	cache := requireImages(t)
	imgs, err := imagesenv.Load(cache)
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread() // this thread makes the namespace, then leaves it
	defer runtime.UnlockOSThread()
	home, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("a network namespace: %v", err)
	}
	defer ns.Close()
	const tapName = "gvtap8"
	addTestTAP(t, tapName)
	big, port := serveDownload(t) // in the namespace, as this thread is
	if err := netns.Set(home); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	sock := filepath.Join(dir, "src.sock")
	waiting := "ip addr add 10.0.0.2/24 dev eth0; ip link set eth0 up; ping -c 1 -w 2000 10.0.0.1 >/dev/null && echo FIRST-PING-OK; " + linuxWaiting
	args := []string{"-kernel", imgs.Kernel, "-initrd", imgs.Initrd, "-mem", "512M", "-cache", cache,
		"-append", "console=ttyS0 reboot=k panic=-1 quiet " + images.AgentCommandLine(waiting, false),
		"-net", "tap,ifname=" + tapName, "-api", sock, "-snapshot-dir", snaps}
	src, _ := startLinuxIn(t, ns, args...)
	src.waitOut(t, "WAITING-FOR-A-COMMAND", 3*time.Minute)
	if !strings.Contains(src.out.String(), "FIRST-PING-OK") {
		t.Fatalf("the guest's first ping was not answered:\n%s", src.out.String())
	}
	ctx := context.Background()
	snap, err := api.NewClient(sock).Snapshot(ctx, api.SnapshotRequest{Dir: filepath.Join(snaps, "net")})
	if err != nil {
		t.Fatalf("snapshot: %v\nstderr:\n%s", err, src.stderr.String())
	}
	t.Logf("snapshot of Linux with virtio-net: %d pages, %d-byte state, paused %v", snap.Pages, snap.StateBytes, snap.Paused)
	if _, err := api.NewClient(sock).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	src.end(t)

	g, in := startLinuxIn(t, ns, "-restore", filepath.Join(snaps, "net"), "-cache", cache)
	cmd := fmt.Sprintf("echo restored $((6*7)) up; ping -c 3 -w 2000 10.0.0.1 >/dev/null && echo PING-OK; wget -O /tmp/big http://10.0.0.1:%d/ && sha256sum /tmp/big\n", port)
	if _, err := in.WriteString(cmd); err != nil {
		t.Fatal(err)
	}
	g.waitOut(t, images.AgentExit+" 0", 2*time.Minute)
	out := g.out.String()
	for _, want := range []string{"restored 42 up", "PING-OK", fmt.Sprintf("%x", sha256.Sum256(big))} {
		if !strings.Contains(out, want) {
			t.Errorf("the restored guest's console lacks %q:\n%s", want, out)
		}
	}
	g.end(t)
}

// TestLinuxUserNetSnapshotRestore: Debian's kernel with -net user, its
// address taken by DHCP before the agent waits, is snapshotted and
// stopped; restored in a new govmm, whose user-mode network is a new one
// (connections through the old one are gone; the guest's address and
// lease still hold), Linux fetches a page from an HTTP server on the
// host's loopback through the gateway. Full Linux: in the emulated
// machine on PVM hosts.
func TestLinuxUserNetSnapshotRestore(t *testing.T) {
	cache := requireImages(t)
	imgs, err := imagesenv.Load(cache)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello to a restored guest")
	})}
	go srv.Serve(l)
	defer srv.Close()
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	sock := filepath.Join(dir, "src.sock")
	waiting := "ip link set eth0 up; dhclient -ipv6=false -timeout 30 eth0 >/dev/null 2>&1; ip -4 addr show dev eth0 | grep -q 192.168.127 && echo LEASE-OK; " + linuxWaiting
	src, _ := startLinux(t, true, "-kernel", imgs.Kernel, "-initrd", imgs.Initrd, "-mem", "512M", "-cache", cache,
		"-append", "console=ttyS0 reboot=k panic=-1 quiet "+images.AgentCommandLine(waiting, false),
		"-net", "user", "-api", sock, "-snapshot-dir", snaps)
	if !strings.Contains(src.out.String(), "LEASE-OK") {
		t.Fatalf("the guest got no address by DHCP:\n%s", src.out.String())
	}
	ctx := context.Background()
	if _, err := api.NewClient(sock).Snapshot(ctx, api.SnapshotRequest{Dir: filepath.Join(snaps, "user")}); err != nil {
		t.Fatalf("snapshot: %v\nstderr:\n%s", err, src.stderr.String())
	}
	if _, err := api.NewClient(sock).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	src.end(t)

	g, in := startLinux(t, false, "-restore", filepath.Join(snaps, "user"), "-cache", cache)
	cmd := fmt.Sprintf("echo restored $((6*7)) up; wget -O /tmp/page http://192.168.127.254:%d/ && cat /tmp/page\n", l.Addr().(*net.TCPAddr).Port)
	if _, err := in.WriteString(cmd); err != nil {
		t.Fatal(err)
	}
	g.waitOut(t, images.AgentExit+" 0", 2*time.Minute)
	for _, want := range []string{"restored 42 up", "hello to a restored guest"} {
		if !strings.Contains(g.out.String(), want) {
			t.Errorf("the restored guest's console lacks %q:\n%s", want, g.out.String())
		}
	}
	if !strings.Contains(g.stderr.String(), "a new user-mode network") {
		t.Errorf("govmm -v did not say the user-mode network is a new one:\n%s", g.stderr.String())
	}
	g.end(t)
}
