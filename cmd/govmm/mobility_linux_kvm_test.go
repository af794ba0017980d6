package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/machine/machinetest"
)

// linuxWaiting is the guest agent's command for the full Linux tests: it
// says it is ready, then waits for one line on the serial console, which
// the test writes only after the guest was saved and restored (or
// migrated), and runs it.
const linuxWaiting = `echo WAITING-FOR-A-COMMAND; read -r line < /dev/ttyS0; eval "$line"`

// linuxCommand is the line the test writes: only a guest that runs it can
// print "restored 42 up" (the console echoes the line itself, unexpanded).
const linuxCommand = "echo restored $((6*7)) up $(cat /proc/uptime)\n"

// linuxArgs are govmm's flags for the default Linux guest running the
// agent's command, its console on stdio.
func linuxArgs(t *testing.T, cache string) []string {
	g, err := imagesenv.Load(cache)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-kernel", g.Kernel, "-initrd", g.Initrd, "-mem", "512M", "-cache", cache,
		"-append", "console=ttyS0 reboot=k panic=-1 quiet " + images.AgentCommandLine(linuxWaiting, false)}
}

// startLinux runs govmm with args and a pipe as its console's input,
// and waits until the guest is waiting for its command (when wait).
func startLinux(t *testing.T, wait bool, args ...string) (*govmmRun, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	g := &govmmRun{out: newRoundsOut(), stderr: machinetest.NewConsole(), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	go func() {
		st, err := run(ctx, append([]string{"-serial", "stdio", "-v"}, args...), r, g.out, g.stderr)
		g.status = st
		g.done <- err
	}()
	if wait {
		g.waitOut(t, "WAITING-FOR-A-COMMAND", 3*time.Minute)
	}
	return g, w
}

// waitOut waits until the guest's console shows s.
func (g *govmmRun) waitOut(t *testing.T, s string, limit time.Duration) {
	t.Helper()
	timeout := time.After(limit)
	for !strings.Contains(g.out.String(), s) {
		select {
		case <-g.out.More():
		case err := <-g.done:
			g.done <- err
			t.Fatalf("govmm ended (status %d, %v) before the console showed %q\nconsole:\n%s\nstderr:\n%s", g.status, err, s, g.out.String(), g.stderr.String())
		case <-timeout:
			t.Fatalf("the console did not show %q within %v\nconsole:\n%s\nstderr:\n%s", s, limit, g.out.String(), g.stderr.String())
		}
	}
}

// commandRuns writes the command to the guest's console and checks it
// runs there: the guest goes on where it was saved.
func commandRuns(t *testing.T, g *govmmRun, in *os.File) {
	t.Helper()
	if _, err := in.WriteString(linuxCommand); err != nil {
		t.Fatal(err)
	}
	g.waitOut(t, "restored 42 up ", time.Minute)
	g.waitOut(t, images.AgentExit+" 0", time.Minute)
	g.end(t)
}

// TestLinuxSnapshotRestoreMigrate boots Debian's kernel with the agent,
// which waits for a command on its console; snapshots it there through
// the control API and stops it; restores the snapshot in a new govmm,
// writes the command and sees the restored guest run it; then boots it
// again, migrates it over loopback TCP to a govmm waiting with -incoming,
// and sees the command run there. Full Linux: in the emulated machine on
// PVM hosts.
func TestLinuxSnapshotRestoreMigrate(t *testing.T) {
	cache := requireImages(t)
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	sock := func(name string) string { return filepath.Join(dir, name+".sock") }
	ctx := context.Background()

	src, _ := startLinux(t, true, append(linuxArgs(t, cache), "-api", sock("src"), "-snapshot-dir", snaps)...)
	snap, err := api.NewClient(sock("src")).Snapshot(ctx, api.SnapshotRequest{Dir: filepath.Join(snaps, "shell")})
	if err != nil {
		t.Fatalf("snapshot: %v\nstderr:\n%s", err, src.stderr.String())
	}
	t.Logf("snapshot of Linux at its agent: %d pages, %d-byte state, paused %v", snap.Pages, snap.StateBytes, snap.Paused)
	if _, err := api.NewClient(sock("src")).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	src.end(t)

	clone, in := startLinux(t, false, "-restore", filepath.Join(snaps, "shell"), "-cache", cache)
	commandRuns(t, clone, in)
	t.Logf("restored guest: %q; its clocksource lines: %q", lastLine(clone.out.String(), "restored 42"), lastLine(clone.out.String(), "clocksource"))

	src2, _ := startLinux(t, true, append(linuxArgs(t, cache), "-api", sock("src2"))...)
	addr := freePort(t)
	dst, in := startLinux(t, false, "-incoming", "tcp:"+addr, "-mem", "512M", "-cache", cache)
	dst.waitFor(t, "waiting for a migration on")
	res, err := api.NewClient(sock("src2")).Migrate(ctx, api.MigrateRequest{URI: "tcp:" + addr}, nil)
	if err != nil {
		t.Fatalf("migrate: %v\nsource:\n%s\ndestination:\n%s", err, src2.stderr.String(), dst.stderr.String())
	}
	t.Logf("migrated Linux: %d rounds, %.1f MiB, downtime %v, total %v", res.Rounds, float64(res.SentBytes)/(1<<20), res.Downtime, res.Total)
	src2.end(t)
	commandRuns(t, dst, in)
	t.Logf("migrated guest: %q; its clocksource lines: %q", lastLine(dst.out.String(), "restored 42"), lastLine(dst.out.String(), "clocksource"))
}

// lastLine is the console's last line holding s.
func lastLine(out, s string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}
