package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/images"
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
	copyDiskImage(t, disk, clone)

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
