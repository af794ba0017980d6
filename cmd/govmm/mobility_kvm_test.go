package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/api"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine/machinetest"
)

// roundsOut is a govmm's standard output (-serial stdio): the test
// guest's mode=migrate rounds, one 'B' each; syncWriter its standard error.
type (
	roundsOut  = machinetest.Console
	syncWriter = machinetest.Console
)

func newRoundsOut() *roundsOut { return machinetest.NewConsole() }

// govmmRun is a govmm child run in the background.
type govmmRun struct {
	out    *roundsOut
	stderr *syncWriter
	done   chan error
	status int
}

// waitFor waits until govmm's stderr says s.
func (g *govmmRun) waitFor(t *testing.T, s string) {
	t.Helper()
	limit := time.After(time.Minute)
	for !strings.Contains(g.stderr.String(), s) {
		select {
		case <-g.stderr.More():
		case err := <-g.done:
			g.done <- err
			t.Fatalf("govmm ended (status %d, %v) before saying %q\nstderr:\n%s", g.status, err, s, g.stderr.String())
		case <-limit:
			t.Fatalf("govmm did not say %q in a minute\nstderr:\n%s", s, g.stderr.String())
		}
	}
}

// startGovmm runs govmm with args (seccomp and Landlock on, as a user's)
// and waits until its guest has done a few rounds more than before.
func startGovmm(t *testing.T, args ...string) *govmmRun {
	t.Helper()
	g := &govmmRun{out: newRoundsOut(), stderr: machinetest.NewConsole(), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	go func() {
		st, err := run(ctx, append([]string{"-serial", "stdio", "-v"}, args...), nil, g.out, g.stderr)
		g.status = st
		g.done <- err
	}()
	return g
}

// waitRounds waits for n rounds in all.
func (g *govmmRun) waitRounds(t *testing.T, n int) {
	t.Helper()
	limit := time.After(time.Minute)
	for g.out.Rounds() < n {
		select {
		case <-g.out.More():
		case err := <-g.done:
			g.done <- err
			t.Fatalf("govmm ended (status %d, %v) before round %d\nstderr:\n%s", g.status, err, n, g.stderr.String())
		case <-limit:
			t.Fatalf("govmm's guest did %d rounds in a minute, want %d\nstderr:\n%s", g.out.Rounds(), n, g.stderr.String())
		}
	}
}

// end waits for govmm to exit and wants status 0.
func (g *govmmRun) end(t *testing.T) {
	t.Helper()
	select {
	case err := <-g.done:
		if err != nil || g.status != 0 {
			t.Errorf("govmm ended with status %d, %v\nstderr:\n%s", g.status, err, g.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("govmm did not end\nstderr:\n%s", g.stderr.String())
	}
}

// ctl runs govmm ctl and decodes its JSON answer into out.
func ctl(t *testing.T, out any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	status, err := runCtl(context.Background(), args, &stdout, &stderr)
	if err != nil || status != 0 {
		t.Fatalf("govmm ctl %q = %d, %v\nstderr:\n%s", args, status, err, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("govmm ctl %q printed %q: %v", args, stdout.String(), err)
		}
	}
}

// freePort returns a TCP port on the loopback that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSnapshotRestoreMigrateCommands runs the whole of issue 8's command
// line on the test guest's page-bumping rounds (which stop the guest the
// moment a page is wrong), with seccomp and Landlock on: govmm -api with
// -snapshot-dir, govmm ctl snapshot, govmm -restore of it (a restore with
// a -cpus that differs refused), govmm -incoming and govmm ctl migrate,
// after which the source exits 0 and the guest goes on counting at the
// destination.
func TestSnapshotRestoreMigrateCommands(t *testing.T) {
	kvmtest.Require(t)
	gs, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	sock := func(name string) string { return filepath.Join(dir, name+".sock") }
	src := startGovmm(t, "-kernel", gs.ELF, "-mem", "128M", "-append", "mode=migrate rounds=0 mb=32", "-api", sock("src"), "-snapshot-dir", snaps)
	src.waitRounds(t, 5)
	if st, err := os.Stat(sock("src")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the API socket: %v, %v; want mode 0600", st.Mode(), err)
	}
	var info api.Info
	ctl(t, &info, "-api", sock("src"), "info")
	if info.State != api.StateRunning || info.MemoryBytes != 128<<20 {
		t.Errorf("ctl info = %+v", info)
	}
	var snap api.SnapshotResult
	ctl(t, &snap, "-api", sock("src"), "snapshot", filepath.Join(snaps, "one"))
	t.Logf("snapshot: %d pages, the guest paused %v", snap.Pages, snap.Paused)

	// A restore that asks for another shape is refused, by name.
	var stderr bytes.Buffer
	status, err := run(context.Background(), []string{"-restore", filepath.Join(snaps, "one"), "-cpus", "2", "-serial", "none"}, nil, &bytes.Buffer{}, &stderr)
	if status != 1 || err == nil || !strings.Contains(err.Error(), "vCPUs: 2 here, 1 in the saved guest") {
		t.Errorf("govmm -restore -cpus 2 = %d, %v; want 1 and an error naming the vCPUs", status, err)
	}

	clone := startGovmm(t, "-restore", filepath.Join(snaps, "one"), "-api", sock("clone"))
	clone.waitRounds(t, 5)
	ctl(t, &info, "-api", sock("clone"), "info")
	if !strings.Contains(info.Restored, "one") {
		t.Errorf("the restored govmm's info = %+v, want it restored from the snapshot", info)
	}
	ctl(t, nil, "-api", sock("clone"), "stop")
	clone.end(t)

	addr := freePort(t)
	dst := startGovmm(t, "-incoming", "tcp:"+addr, "-mem", "128M", "-api", sock("dst"))
	dst.waitFor(t, "waiting for a migration on")
	var res api.MigrateResult
	ctl(t, &res, "-api", sock("src"), "migrate", "-quiet", "-bandwidth", "200M", "tcp:"+addr)
	t.Logf("migrated: %d rounds, %.1f MiB, downtime %v, total %v", res.Rounds, float64(res.SentBytes)/(1<<20), res.Downtime, res.Total)
	src.end(t)
	if !strings.Contains(src.stderr.String(), "the guest migrated to tcp:"+addr) {
		t.Errorf("the source's stderr does not say where the guest went:\n%s", src.stderr.String())
	}
	dst.waitRounds(t, 5)
	ctl(t, &info, "-api", sock("dst"), "info")
	if info.State != api.StateRunning || !strings.Contains(info.Restored, "migration from") {
		t.Errorf("the destination's info = %+v", info)
	}
	ctl(t, nil, "-api", sock("dst"), "stop")
	dst.end(t)
	if strings.Contains(dst.out.String(), "FAILED") {
		t.Errorf("the guest found a page wrong on the destination:\n%s", dst.out.String())
	}
}
