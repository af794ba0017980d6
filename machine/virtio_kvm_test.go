package machine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/virtio"
)

// virtioPattern is the test guest's data pattern (PATTERN in
// images/testguest/src/virtio.h): a function of the byte's offset on the
// disk.
func virtioPattern(off uint64) byte { return byte((off>>9)*7 + off*13 + 0x5a) }

// newDisk makes a sparse disk image of size bytes.
func newDisk(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
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

// TestVirtioBlkGuest: the test guest's own virtio driver negotiates with
// govmm's virtio-blk and virtio-rng, takes GET_ID and the entropy by MSI-X
// interrupt, writes a pattern from ring 3 (polling, notifications through
// the ioeventfd), flushes, reads it back and discards a range; the host
// finds the pattern in the file and the hole where the discard was.
func TestVirtioBlkGuest(t *testing.T) {
	kvmtest.Require(t)
	disk := newDisk(t, 8<<20)
	const sector, n, bytes = 64, 32, 8192
	cmd := fmt.Sprintf("mode=virtio blk_sector=%d blk_n=%d blk_bytes=%d discard=4096 discard_n=2048", sector, n, bytes)
	// Data where the discard goes, so that the hole is the discard's.
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 1<<20), 2<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := runDeviceGuest(t, cmd, []Device{Device("virtio-blk,file=" + disk + ",serial=govmm-test-disk"), "virtio-rng"}, PITKernel)
	if r.err != nil || r.res.Status != testguest.ExitOK || !r.res.DebugExit {
		t.Fatalf("Run() = %+v, %v; want status 0\nserial:\n%s\nlog:\n%s", r.res, r.err, r.serial, r.log)
	}
	for _, w := range []string{
		"type=2 features=", "virtio-blk capacity=16384 id=govmm-test-disk",
		fmt.Sprintf("virtio-blk wrote n=%d bytes=%d", n, n*bytes), "virtio-blk flush ok",
		fmt.Sprintf("virtio-blk read ok n=%d", n), "virtio-blk discard ok",
		"virtio-rng ok bytes=64", "virtio ok devices=2",
	} {
		if !strings.Contains(r.serial, w) {
			t.Errorf("serial output lacks %q:\n%s", w, r.serial)
		}
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < n*bytes; i++ {
		off := sector*512 + i
		if got[off] != virtioPattern(off) {
			t.Fatalf("disk byte %d = %#x, want %#x: the guest's write did not reach the file", off, got[off], virtioPattern(off))
		}
	}
	fd, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	hole, err := unix.Seek(int(fd.Fd()), 2<<20, unix.SEEK_HOLE)
	if err != nil || hole != 2<<20 {
		t.Errorf("SEEK_HOLE from 2 MiB = %d, %v; want 2 MiB, where the guest discarded 1 MiB", hole, err)
	}
	for _, tr := range r.m.VirtioTransports() {
		if tr.Broken() != 0 || tr.IRQErrors() != 0 || tr.Status()&virtio.StatusDriverOK == 0 {
			t.Errorf("transport: status %#x, %d broken, %d interrupt errors; want DRIVER_OK, 0, 0", tr.Status(), tr.Broken(), tr.IRQErrors())
		}
	}
	if r.m.pci.irqs.caps.ioeventfd && r.m.pci.irqs.rings.Load() == 0 {
		t.Errorf("KVM has ioeventfds, yet no notification came through one:\n%s", r.log)
	}
	t.Logf("%s", r.m.pci.report())
}

// TestVirtioBlkReadOnlyGuest: on a read-only drive the guest's write
// fails with IOERR and the file is untouched.
func TestVirtioBlkReadOnlyGuest(t *testing.T) {
	kvmtest.Require(t)
	disk := newDisk(t, 1<<20)
	r := runDeviceGuest(t, "mode=virtio blk_sector=0 blk_n=4 blk_bytes=4096", []Device{Device("virtio-blk,file=" + disk + ",readonly=on")}, PITKernel)
	if r.err != nil || r.res.Status != testguest.ExitOK {
		t.Fatalf("Run() = %+v, %v; want status 0\nserial:\n%s\nlog:\n%s", r.res, r.err, r.serial, r.log)
	}
	if !strings.Contains(r.serial, "virtio-blk ro: write refused") || strings.Contains(r.serial, "virtio-blk wrote") {
		t.Errorf("serial output does not show the refused write:\n%s", r.serial)
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != 0 {
			t.Fatalf("byte %d of the read-only disk is %#x, want 0", i, b)
		}
	}
}
