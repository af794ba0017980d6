package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/machine/machinetest"
)

// newDisk makes a sparse disk image of size bytes in dir.
func newDisk(t *testing.T, dir string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// loopLog is a guest's serial output that wakes whoever waits for a
// number of the loop's rounds (a 'V' each).
type loopLog struct{ *machinetest.Console }

func newLoopLog() *loopLog { return &loopLog{machinetest.NewConsole()} }

// rounds counts the rounds printed after "virtio-blk loop start".
// A restored guest's output starts in the loop.
func (l *loopLog) rounds() int { return machinetest.LoopRounds(l.String()) }

// loopGuest is a machine running the loop.
type loopGuest struct {
	m      *machine.Machine
	serial *loopLog
	done   chan runResult
}

func startLoop(t *testing.T, c machine.Config) *loopGuest {
	t.Helper()
	g := &loopGuest{serial: newLoopLog(), done: make(chan runResult, 1)}
	c.KVMPath, c.SerialOut = kvmtest.Path(), g.serial
	m, err := machine.New(c)
	if err != nil {
		t.Fatalf("machine.New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	g.m = m
	go func() {
		res, err := m.Run(context.Background())
		g.done <- runResult{res, err}
	}()
	return g
}

// waitRounds waits until the guest has done n rounds.
func (g *loopGuest) waitRounds(t *testing.T, n int) {
	t.Helper()
	limit := time.After(time.Minute)
	for g.serial.rounds() < n {
		select {
		case <-g.serial.More():
		case r := <-g.done:
			g.done <- r
			t.Fatalf("the guest ended (%+v, %v) before round %d; serial:\n%s", r.res, r.err, n, g.serial.String())
		case <-limit:
			t.Fatalf("no round %d in a minute; serial:\n%s", n, g.serial.String())
		}
	}
}

// end waits for the guest to finish its rounds and checks it found every
// block right.
func (g *loopGuest) end(t *testing.T, rounds int) {
	t.Helper()
	select {
	case r := <-g.done:
		if r.err != nil || r.res.Status != 0 || !r.res.DebugExit {
			t.Fatalf("Run() = %+v, %v, want status 0 from the guest; serial:\n%s", r.res, r.err, g.serial.String())
		}
	case <-time.After(2 * time.Minute):
		g.m.Stop()
		t.Fatalf("the guest did not end within 2 minutes; serial:\n%s", g.serial.String())
	}
	for _, want := range []string{fmt.Sprintf("virtio-blk loop ok rounds=%d", rounds), "virtio-blk loop flush ok (interrupt)"} {
		if !strings.Contains(g.serial.String(), want) {
			t.Errorf("serial output lacks %q:\n%s", want, g.serial.String())
		}
	}
	// The loop's notifications reached the device through the
	// doorbell's ioeventfd, registered again by a restore.
	if mt := g.m.Metrics(); mt.DoorbellRings == 0 {
		t.Errorf("no doorbell ring came through an ioeventfd: %+v", mt)
	}
}

// snapshotWithDisk takes a snapshot into dir while the guest is paused,
// and copies the disk as it is then (every write flushed by the pause)
// to diskCopy: a snapshot of a guest with a disk is both. It returns the
// SHA-256 of guest RAM at the pause too.
func snapshotWithDisk(t *testing.T, s *Snapshotter, m *machine.Machine, dir string, o Options, disk, diskCopy string) (Result, [32]byte) {
	t.Helper()
	ctx := context.Background()
	if err := m.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.Save(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	sum := machinetest.RAMSum(m.Memory())
	machinetest.CopyFile(t, disk, diskCopy)
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	return res, sum
}

// TestSnapshotRestoreVirtioBlk snapshots the test guest while its
// virtio-blk driver writes and reads back blocks round after round (a
// full snapshot, then a diff snapshot on it), each with a copy of the
// disk then, and restores each as a clone (its RAM the same as the
// guest's at the snapshot, the pages the device wrote included) on its disk copy (given with
// the restore: the disk is the clone's own): every clone goes on from
// the round it was saved in, finds every block it reads back right (the
// data the device read into its RAM, the rings and the device's place
// in them all came back), its notifications reach the device through
// the doorbell's ioeventfd and the device's interrupt reaches it (MSI-X
// routes and ioeventfds set up again), and it leaves its disk with the
// last round's pattern, as does the original on its own.
func TestSnapshotRestoreVirtioBlk(t *testing.T) {
	kvmtest.Require(t)
	const rounds = 400
	dir := t.TempDir()
	disk := newDisk(t, dir, 8<<20)
	c := machine.Config{Kernel: migrateGuest(t), MemSize: 128 << 20, CPUs: 1, Cmdline: machinetest.LoopCmdline(rounds),
		Devices: []machine.Device{machine.Device("virtio-blk,file=" + disk)}}
	src := startLoop(t, c)
	src.waitRounds(t, 20)
	s := NewSnapshotter(src.m, nil)
	full, diff := filepath.Join(dir, "full"), filepath.Join(dir, "diff")
	sums := map[string][32]byte{}
	res, sum := snapshotWithDisk(t, s, src.m, full, Options{Track: true}, disk, filepath.Join(dir, "full.img"))
	sums["full"] = sum
	t.Logf("full snapshot at round ~%d: %d pages, %d-byte state, guest paused %v", src.serial.rounds(), res.Pages, res.StateBytes, res.Paused)
	src.waitRounds(t, src.serial.rounds()+20)
	res, sums["diff"] = snapshotWithDisk(t, s, src.m, diff, Options{Diff: true}, disk, filepath.Join(dir, "diff.img"))
	saved := src.serial.rounds()
	t.Logf("diff snapshot at round ~%d: %d pages, guest paused %v", saved, res.Pages, res.Paused)
	src.end(t, rounds)
	machinetest.CheckLoopDisk(t, disk, rounds)

	// A state whose device part says what the device could not be in (a
	// file written to mislead passes the checksum) is refused, naming
	// the device, before the guest runs.
	for _, bad := range []struct {
		name, field string
		value       any
		want        string
	}{
		{"queue size", "Size", 3, "size 3"},
		{"ring indices", "NextAvail", 40000, "chains ahead"},
		{"descriptor table outside RAM", "Desc", uint64(1) << 40, "corrupt"},
	} {
		t.Run("refused: "+bad.name, func(t *testing.T) {
			restore, f, err := Load(full)
			if err != nil {
				t.Fatal(err)
			}
			const id = "virtio-blk@00:01.0"
			ds, ok := restore.State.Devices[id]
			if !ok {
				t.Fatalf("the state has no %s: %v", id, restore.State.Devices)
			}
			var v map[string]any
			if err := json.Unmarshal(ds.State, &v); err != nil {
				t.Fatal(err)
			}
			v["Transport"].(map[string]any)["Queues"].([]any)[0].(map[string]any)[bad.field] = bad.value
			if ds.State, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
			restore.State.Devices[id] = ds
			c := machine.Config{KVMPath: kvmtest.Path(), Restore: restore, Devices: []machine.Device{machine.Device("virtio-blk,file=" + filepath.Join(dir, "full.img"))}}
			c.ApplySaved(f.Machine.Config)
			m, err := machine.New(c)
			if err == nil {
				m.Close()
				t.Fatalf("machine.New restored a state with a wrong %s", bad.name)
			}
			if !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("machine.New() = %v, want an error naming %s and %q", err, id, bad.want)
			}
		})
	}

	for _, snap := range []string{"full", "diff"} {
		t.Run(snap, func(t *testing.T) {
			restore, f, err := Load(filepath.Join(dir, snap))
			if err != nil {
				t.Fatal(err)
			}
			// The guest's RAM as it was at the pause: with the pages the
			// device wrote into it (a diff snapshot has them only if the
			// VMM counted its own writes as dirtying them).
			if got := machinetest.RAMSum(restore.Memory); got != sums[snap] {
				t.Errorf("restored RAM SHA-256 %x, the guest's at the snapshot %x", got, sums[snap])
			}
			clone := filepath.Join(dir, snap+".img")
			c := machine.Config{Restore: restore, Devices: []machine.Device{machine.Device("virtio-blk,file=" + clone)}}
			c.ApplySaved(f.Machine.Config)
			if len(c.Devices) != 1 || !strings.Contains(string(c.Devices[0]), clone) {
				t.Fatalf("ApplySaved replaced the clone's disk: devices %q", c.Devices)
			}
			dst := startLoop(t, c)
			dst.end(t, rounds)
			if got := dst.serial.rounds(); got < 1 || got >= rounds {
				t.Errorf("the clone printed %d rounds: it did not go on from the snapshot", got)
			}
			machinetest.CheckLoopDisk(t, clone, rounds)
		})
	}
}
