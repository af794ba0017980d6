package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/machine/machinetest"
	"github.com/govmm/govmm/migration"
	"github.com/govmm/govmm/snapshot"
	"github.com/govmm/govmm/vcpu"
)

// rounds is the test guest's serial output, which tells when it has done
// n rounds of mode=migrate.
type rounds struct{ *machinetest.Console }

func (r *rounds) wait(t *testing.T, n int) {
	t.Helper()
	limit := time.After(time.Minute)
	for r.Rounds() < n {
		select {
		case <-r.More():
		case <-limit:
			t.Fatalf("the guest did %d rounds in a minute, want %d", r.Rounds(), n)
		}
	}
}

type served struct {
	m      *machine.Machine
	c      *Client
	serial *rounds
	done   chan error
	moved  chan string // Migrated's uri
}

// serve runs the test guest (mode=migrate, forever) with an API server
// whose snapshots may go under snapDir.
func serve(t *testing.T, snapDir string) *served {
	t.Helper()
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	elf, err := os.ReadFile(g.ELF)
	if err != nil {
		t.Fatal(err)
	}
	serial := &rounds{machinetest.NewConsole()}
	m, err := machine.New(machine.Config{KVMPath: kvmtest.Path(), Kernel: elf, MemSize: 64 << 20, CPUs: 1, Cmdline: "mode=migrate rounds=0 mb=16", SerialOut: serial})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{m: m, c: NewClient(sock), serial: serial, done: make(chan error, 1), moved: make(chan string, 1)}
	srv := NewServer(Config{Machine: m, SnapshotDirs: []string{snapDir}, Exits: func() any { return map[string]int{"io": 1} },
		Migrated: func(uri string, _ migration.Result) { s.moved <- uri }})
	go srv.Serve(ln)
	go func() {
		_, err := m.Run(context.Background())
		s.done <- err
	}()
	t.Cleanup(func() {
		m.Stop()
		<-s.done
		srv.Close()
		m.Close()
	})
	serial.wait(t, 3)
	return s
}

// TestAPI drives a running test guest through every path of the API.
func TestAPI(t *testing.T) {
	kvmtest.Require(t)
	snapDir := t.TempDir()
	s := serve(t, snapDir)
	ctx := context.Background()
	wantState := func(what string, in Info, err error, state string) {
		t.Helper()
		if err != nil || in.State != state {
			t.Fatalf("%s = %+v, %v; want state %s", what, in, err, state)
		}
	}
	wantStatus := func(what string, err error, status int, says string) {
		t.Helper()
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, says) {
			t.Errorf("%s = %v, want a %d error saying %q", what, err, status, says)
		}
	}
	in, err := s.c.Info(ctx)
	wantState("Info()", in, err, StateRunning)
	if in.VCPUs != 1 || in.MemoryBytes != 64<<20 || in.Host == "" || in.Govmm == "" {
		t.Errorf("Info() = %+v", in)
	}
	in, err = s.c.Pause(ctx)
	wantState("Pause()", in, err, StatePaused)
	_, err = s.c.Pause(ctx)
	wantStatus("Pause() of a paused guest", err, http.StatusConflict, "already paused")
	n := s.serial.Rounds()
	_, err = s.c.PowerButton(ctx)
	wantStatus("PowerButton() of a paused guest", err, http.StatusConflict, "resume it first")
	in, err = s.c.Resume(ctx)
	wantState("Resume()", in, err, StateRunning)
	s.serial.wait(t, n+3)
	_, err = s.c.Resume(ctx)
	wantStatus("Resume() of a running guest", err, http.StatusConflict, "not paused")

	res, err := s.c.Snapshot(ctx, SnapshotRequest{Dir: filepath.Join(snapDir, "one"), Track: true})
	if err != nil || res.Pages == 0 || res.StateBytes == 0 {
		t.Fatalf("Snapshot() = %+v, %v", res, err)
	}
	if _, err := snapshot.ReadState(res.Dir); err != nil {
		t.Errorf("the snapshot's state file: %v", err)
	}
	diff, err := s.c.Snapshot(ctx, SnapshotRequest{Dir: filepath.Join(snapDir, "two"), Diff: true})
	if err != nil || diff.Base != res.Dir || diff.Pages > res.Pages {
		t.Errorf("Snapshot(diff) = %+v, %v; want based on %s with fewer pages", diff, err, res.Dir)
	}
	_, err = s.c.Snapshot(ctx, SnapshotRequest{Dir: t.TempDir()})
	wantStatus("Snapshot() outside -snapshot-dir", err, http.StatusBadRequest, "not in "+snapDir)
	_, err = s.c.Snapshot(ctx, SnapshotRequest{Dir: "relative"})
	wantStatus("Snapshot() to a relative path", err, http.StatusBadRequest, "give an absolute path")
	in, err = s.c.Info(ctx)
	wantState("Info() after the snapshots", in, err, StateRunning)

	m, err := s.c.Metrics(ctx)
	var mt struct {
		Machine machine.Metrics `json:"machine"`
		Exits   map[string]int  `json:"exits"`
	}
	if err != nil || json.Unmarshal(m, &mt) != nil || len(mt.Machine.VCPUs) != 1 || mt.Exits["io"] != 1 {
		t.Errorf("Metrics() = %s, %v", m, err)
	}
	if err := s.c.do(ctx, http.MethodPost, "/nothing", nil, nil); err == nil {
		t.Errorf("POST /v1/nothing = nil error, want 404")
	} else {
		wantStatus("POST /v1/nothing", err, http.StatusNotFound, "the API's paths are under /v1/")
	}
	err = s.c.do(ctx, http.MethodPost, "/snapshot", map[string]any{"dir": snapDir, "colour": "red"}, nil)
	wantStatus("a snapshot request with an unknown field", err, http.StatusBadRequest, "unknown field")
	_, err = s.c.Migrate(ctx, MigrateRequest{URI: "udp:x"}, nil)
	wantStatus("Migrate(udp:x)", err, http.StatusBadRequest, "give tcp:HOST:PORT")

	in, err = s.c.Stop(ctx)
	wantState("Stop()", in, err, StateStopping)
	if err := <-s.done; err != nil {
		t.Errorf("Run() after Stop() = %v", err)
	}
	s.done <- nil
}

// TestAPIMigrate migrates the test guest through /v1/migrate to a
// receiver in this process, reading the progress lines as they come.
func TestAPIMigrate(t *testing.T) {
	kvmtest.Require(t)
	s := serve(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ran := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			ran <- err
			return
		}
		in, err := migration.Receive(conn, func(machine.SavedConfig) error { return nil }, nil)
		if err != nil {
			ran <- err
			return
		}
		c := machine.Config{KVMPath: kvmtest.Path(), SerialOut: &rounds{machinetest.NewConsole()}, Restore: in.Restore}
		c.ApplySaved(in.Restore.State.Config)
		m, err := machine.New(c)
		if err != nil {
			in.Abort(err)
			ran <- err
			return
		}
		defer m.Close()
		if err := in.Ready(); err != nil {
			ran <- err
			return
		}
		done := make(chan error, 1)
		go func() {
			res, err := m.Run(context.Background())
			if err == nil && res.Reason != vcpu.StopCanceled {
				err = errors.New("the guest ended on its own: " + res.Reason.String())
			}
			done <- err
		}()
		ran <- in.Running()
		time.AfterFunc(time.Second, m.Stop)
		<-done
	}()
	uri := "tcp:" + ln.Addr().String()
	var events []MigrateProgress
	res, err := s.c.Migrate(context.Background(), MigrateRequest{URI: uri, Bandwidth: 200 << 20, MaxRounds: 3}, func(p MigrateProgress) { events = append(events, p) })
	if err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	if err := <-ran; err != nil {
		t.Fatalf("destination: %v", err)
	}
	if len(events) < res.Rounds || events[len(events)-1].Phase != string(migration.PhaseDone) {
		t.Errorf("Migrate() progress events %+v, want one a round and a last one done", events)
	}
	if got := <-s.moved; got != uri {
		t.Errorf("Migrated(%q), want %q", got, uri)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(time.Minute):
		t.Fatal("the source did not stop after the hand-over")
	}
	t.Logf("migrated in %d rounds, %v, downtime %v", res.Rounds, time.Duration(res.Total), time.Duration(res.Downtime))
}
