package migration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/machine/machinetest"
	"github.com/govmm/govmm/vcpu"
)

// waitLoop waits until the guest has done n rounds of the loop.
func (g *guest) waitLoop(t *testing.T, n int) {
	t.Helper()
	limit := time.After(time.Minute)
	for machinetest.LoopRounds(g.serial.String()) < n {
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

// startLoopSource starts the test guest's virtio-blk loop of rounds on a
// new 8 MiB disk and waits for its twentieth round.
func startLoopSource(t *testing.T, rounds int) (*guest, string) {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<20); err != nil {
		t.Fatal(err)
	}
	serial := newSerialLog()
	m, err := machine.New(machine.Config{KVMPath: kvmtest.Path(), Kernel: guestELF(t), MemSize: 128 << 20, CPUs: 1,
		Cmdline:   machinetest.LoopCmdline(rounds),
		Devices:   []machine.Device{machine.Device("virtio-blk,file=" + disk)},
		SerialOut: serial})
	if err != nil {
		t.Fatal(err)
	}
	g := run(t, m, serial)
	g.waitLoop(t, 20)
	return g, disk
}

// TestMigrateVirtioBlkCut cuts the connection of a migration of the
// virtio-blk loop during the RAM rounds, while the state is sent (the
// source paused, its disk quiesced) and before the destination said it
// is ready (its machine built on the same disk): each time the source's
// guest goes on, its device resumed where it stopped, to the loop's end
// with every block right, and the destination, which never ran the
// guest, did not touch the disk.
func TestMigrateVirtioBlkCut(t *testing.T) {
	kvmtest.Require(t)
	const rounds = 600
	for _, cut := range []string{"round 0", "state", "ready"} {
		t.Run(cut, func(t *testing.T) {
			src, disk := startLoopSource(t, rounds)
			d := listen(t)
			conn := dial(t, d)
			testPhase = func(p string) {
				if p == cut {
					conn.Close()
				}
			}
			defer func() { testPhase = nil }()
			_, err := Send(context.Background(), src.m, conn, Options{MaxRounds: 3, Downtime: time.Nanosecond})
			if err == nil || errors.Is(err, ErrHandedOver) {
				t.Fatalf("Send() = %v, want an error that leaves the guest here", err)
			}
			if src.m.Paused() {
				t.Fatal("the source's guest is paused after a failed migration")
			}
			r := src.result(t, 2*time.Minute)
			out := src.serial.String()
			if r.err != nil || r.res.Status != 0 || !strings.Contains(out, fmt.Sprintf("virtio-blk loop ok rounds=%d", rounds)) {
				t.Fatalf("source Run() = %+v, %v; want the loop's end with status 0; serial:\n%s", r.res, r.err, out)
			}
			machinetest.CheckLoopDisk(t, disk, rounds)
			select {
			case derr := <-d.err:
				if derr == nil {
					t.Errorf("the destination ran the guest too")
				}
			case <-time.After(2 * handoverTimeout):
				t.Errorf("the destination did not give up")
			}
		})
	}
}

// TestMigrateVirtioBlk migrates the test guest while its virtio-blk
// driver writes and reads back blocks round after round, over loopback
// TCP at 8 MiB/s (so the pre-copy takes rounds while the disk is busy),
// the disk shared by both sides as over shared storage: RAM hashes the
// same on both sides at the hand-over (the pages the device wrote into
// guest RAM were sent: the VMM counts its own writes as dirty), the
// guest goes on at the destination from the round it was in, verifies
// every block it reads back, takes the device's interrupt, and leaves the disk at its last round's
// pattern. (With Queue.Return's MarkDirty dropped, both the hashes and
// the guest's own check of the blocks it read fail.)
func TestMigrateVirtioBlk(t *testing.T) {
	kvmtest.Require(t)
	const rounds = 600
	src, disk := startLoopSource(t, rounds)
	d := listen(t)
	// At 8 MiB/s, with a downtime target no page fits in, the rounds go
	// on to their bound while the loop dirties pages (the device's reads
	// among them), then the source pauses and sends the rest.
	res, err := Send(context.Background(), src.m, dial(t, d), Options{Bandwidth: 8 << 20, MaxRounds: 4, Downtime: time.Nanosecond, OnLimit: Finish})
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	at := machinetest.LoopRounds(src.serial.String())
	t.Logf("migrated at round ~%d: %d rounds, %d pages, %.1f MiB sent in %v, downtime %v", at, res.Rounds, res.Pages, float64(res.Sent)/(1<<20), res.Total, res.Downtime)
	if res.Rounds < 2 {
		t.Errorf("Send() took %d round(s), want the bound's 4: the test is to migrate a busy disk's pages over rounds", res.Rounds)
	}
	if r := src.result(t, time.Minute); r.err != nil || r.res.Reason != vcpu.StopCanceled {
		t.Errorf("source Run() = %+v, %v after the hand-over, want stopped by the VMM", r.res, r.err)
	}
	if want, got := machinetest.RAMSum(src.m.Memory()), <-d.sum; got != want {
		t.Errorf("destination RAM SHA-256 %x, source's at the pause %x", got, want)
	}
	if err := <-d.err; err != nil {
		t.Fatalf("destination: %v", err)
	}
	dst := <-d.guest
	r := dst.result(t, 2*time.Minute)
	out := dst.serial.String()
	if r.err != nil || r.res.Status != 0 || !r.res.DebugExit || !strings.Contains(out, fmt.Sprintf("virtio-blk loop ok rounds=%d", rounds)) || !strings.Contains(out, "virtio-blk loop flush ok (interrupt)") {
		t.Fatalf("destination Run() = %+v, %v; want the loop's end with status 0; serial:\n%s", r.res, r.err, out)
	}
	if got := machinetest.LoopRounds(out); got < 1 || got >= rounds {
		t.Errorf("the destination printed %d rounds: it did not go on from the source's", got)
	}
	machinetest.CheckLoopDisk(t, disk, rounds)
}
