package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine/machinetest"
)

// waitLoopRounds waits until g's guest has done n rounds of the loop.
func (g *govmmRun) waitLoopRounds(t *testing.T, n int) {
	t.Helper()
	limit := time.After(time.Minute)
	for machinetest.LoopRounds(g.out.String()) < n {
		select {
		case <-g.out.More():
		case err := <-g.done:
			g.done <- err
			t.Fatalf("govmm ended (status %d, %v) before round %d\nstdout:\n%s\nstderr:\n%s", g.status, err, n, g.out.String(), g.stderr.String())
		case <-limit:
			t.Fatalf("no round %d in a minute\nstdout:\n%s\nstderr:\n%s", n, g.out.String(), g.stderr.String())
		}
	}
}

// TestVirtioClones (issue 8: restoring the same snapshot twice gives two
// clones, each with its own MAC and TAP): govmm runs the test guest's
// virtio-net card on a TAP and its virtio-blk loop on a disk, with
// seccomp and Landlock on; govmm ctl pauses it and snapshots it, and the
// disk is copied twice while it is paused. Two govmm -restore of the one
// snapshot then run at once, each given its own -drive (its disk copy)
// and -net tap,ifname=...,mac=... (its own TAP and MAC): both run, each
// on its TAP, show their own MAC, go on with the loop from the round it
// was saved in, verify every block and leave their disk at the last
// round's pattern. A restore given other devices, or a disk of another
// size, is refused by name.
func TestVirtioClones(t *testing.T) {
	kvmtest.Require(t)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no TAP devices here: %v", err)
	}
	gs, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 600
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	snap := filepath.Join(snaps, "one")
	sock := filepath.Join(dir, "src.sock")
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<20); err != nil {
		t.Fatal(err)
	}
	// TAP names of this process's own (at most 15 bytes); each govmm
	// creates its TAP, which goes when it exits.
	tap := func(c byte) string { return fmt.Sprintf("gvcl%d%c", os.Getpid()%1000000, c) }
	cmdline := machinetest.LoopCmdline(rounds)

	src := startGovmm(t, "-kernel", gs.ELF, "-mem", "128M", "-append", cmdline,
		"-net", "tap,ifname="+tap('a'), "-drive", "file="+disk, "-api", sock, "-snapshot-dir", snaps)
	src.waitLoopRounds(t, 20)
	ctl(t, nil, "-api", sock, "pause")
	ctl(t, nil, "-api", sock, "snapshot", snap)
	clones := []struct {
		tap, mac, disk string
	}{
		{tap('b'), "52:54:00:00:c1:01", filepath.Join(dir, "clone1.img")},
		{tap('c'), "52:54:00:00:c1:02", filepath.Join(dir, "clone2.img")},
	}
	for _, c := range clones {
		machinetest.CopyFile(t, disk, c.disk) // the disk as the snapshot left it: the pause flushed it
	}
	ctl(t, nil, "-api", sock, "stop")
	if err := <-src.done; err != nil && !strings.Contains(err.Error(), "stop") {
		t.Logf("the source ended: status %d, %v", src.status, err)
	}
	savedAt := machinetest.LoopRounds(src.out.String())

	// Refused: devices other than the saved guest's, a disk of another size.
	small := filepath.Join(dir, "small.img")
	if err := os.WriteFile(small, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-drive", "file=" + clones[0].disk}, "devices"},
		{[]string{"-net", "tap,ifname=" + clones[0].tap, "-drive", "file=" + small}, "sectors"},
	} {
		var stderr bytes.Buffer
		status, err := run(context.Background(), append([]string{"-restore", snap, "-serial", "none"}, bad.args...), nil, &bytes.Buffer{}, &stderr)
		if status == 0 || err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("govmm -restore %q = %d, %v; want a refusal naming the %s", bad.args, status, err, bad.want)
		}
	}

	var runs []*govmmRun
	for _, c := range clones {
		runs = append(runs, startGovmm(t, "-restore", snap, "-net", "tap,ifname="+c.tap+",mac="+c.mac, "-drive", "file="+c.disk))
	}
	// Both at once, each on its TAP.
	for _, g := range runs {
		g.waitLoopRounds(t, 1)
	}
	for i, c := range clones {
		if _, err := os.Stat(filepath.Join("/sys/class/net", c.tap)); err != nil {
			t.Errorf("clone %d runs, yet its TAP %s: %v", i, c.tap, err)
		}
	}
	for i, g := range runs {
		c := clones[i]
		g.end(t)
		stderr := g.stderr.String()
		for _, want := range []string{"TAP " + c.tap + ", MAC " + c.mac, "MAC " + c.mac + " instead of the saved guest's 52:54:00:12:34:56"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("clone %d's stderr lacks %q:\n%s", i, want, stderr)
			}
		}
		out := g.out.String()
		if !strings.Contains(out, fmt.Sprintf("virtio-blk loop ok rounds=%d", rounds)) {
			t.Errorf("clone %d did not finish the loop:\n%s", i, out)
		}
		if got := machinetest.LoopRounds(out); got < rounds-savedAt-2 || got >= rounds {
			t.Errorf("clone %d did %d rounds after a snapshot at round ~%d of %d", i, got, savedAt, rounds)
		}
		machinetest.CheckLoopDisk(t, c.disk, rounds)
	}
}
