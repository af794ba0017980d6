package testguest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// virtioPattern is PATTERN of src/virtio.h.
func virtioPattern(off uint64) byte { return byte((off>>9)*7 + off*13 + 0x5a) }

// TestQEMUVirtio runs mode=virtio against QEMU's own virtio-pci devices
// (modern only, on q35, with KVM where QEMU can use it, else TCG): that
// the guest's driver works there too says it follows the virtio spec,
// not govmm's device's quirks. The disk must hold the pattern and the
// discarded hole afterwards; the card talks through a TAP device in a
// network namespace of the test's own (root only).
func TestQEMUVirtio(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	g := buildForTest(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 8<<20); err != nil {
		t.Fatal(err)
	}
	// Data where the discard goes, so that the hole is the discard's.
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{1}, 1<<20), 2<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	accel := "kvm:tcg"
	if os.Getenv("GOVMM_SKIP_KVM") == "1" {
		accel = "tcg"
	}
	const sector, n, bytes_ = 64, 32, 8192
	cmdline := fmt.Sprintf("mode=virtio blk_sector=%d blk_n=%d blk_bytes=%d discard=4096 discard_n=2048", sector, n, bytes_)
	args := []string{"-M", "q35,accel=" + accel, "-m", "128", "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
		"-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x01", "-kernel", g.ELF,
		"-drive", "file=" + disk + ",if=none,id=d0,format=raw,discard=unmap",
		"-device", "virtio-blk-pci,drive=d0,disable-legacy=on,serial=qemu-disk",
		"-device", "virtio-rng-pci,disable-legacy=on"}
	wantNet := os.Geteuid() == 0
	if wantNet {
		runtime.LockOSThread() // QEMU starts from this thread, in the namespace; never unlocked
		ns, err := netns.New()
		if err != nil {
			t.Fatalf("a network namespace: %v", err)
		}
		defer ns.Close()
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "qvtap0"}, Mode: netlink.TUNTAP_MODE_TAP}
		if err := netlink.LinkAdd(tap); err != nil {
			t.Fatalf("a TAP device: %v", err)
		}
		for _, fd := range tap.Fds {
			fd.Close()
		}
		if err := netlink.AddrAdd(tap, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(tap); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-netdev", "tap,id=n0,ifname=qvtap0,script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=n0,disable-legacy=on,mac=52:54:00:12:34:99")
		cmdline += " net_me=0a000002 net_peer=0a000001 pings=2"
	}
	args = append(args, "-append", cmdline)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	t.Logf("qemu -M q35 -accel %s, mode=virtio: %v", accel, time.Since(start).Round(time.Millisecond))
	// QEMU's own failures exit 1 too, as the guest's success does: the
	// last line tells them apart.
	if code := cmd.ProcessState.ExitCode(); code != QEMUExitCode(ExitOK) || !strings.Contains(out.String(), "virtio ok devices=") {
		t.Fatalf("QEMU exited %d (%v), want %d (the guest's success)\n%s", code, err, QEMUExitCode(ExitOK), out.String())
	}
	want := []string{"virtio-blk capacity=16384 id=qemu-disk", fmt.Sprintf("virtio-blk wrote n=%d", n), "virtio-blk flush ok",
		fmt.Sprintf("virtio-blk read ok n=%d", n), "virtio-blk discard ok", "virtio-rng ok bytes=64"}
	if wantNet {
		want = append(want, "virtio-net mac=52:54:00:12:34:99", "virtio-net arp reply from 0a000001", "virtio-net ping reply seq=2", "virtio-net ok", "virtio ok devices=3")
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("QEMU's serial output lacks %q:\n%s", w, out.String())
		}
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < n*bytes_; i++ {
		if off := sector*512 + i; got[off] != virtioPattern(off) {
			t.Fatalf("disk byte %d = %#x, want %#x", off, got[off], virtioPattern(off))
		}
	}
	fd, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if hole, err := unix.Seek(int(fd.Fd()), 2<<20, unix.SEEK_HOLE); err != nil || hole != 2<<20 {
		t.Errorf("SEEK_HOLE from 2 MiB = %d, %v; want 2 MiB, where the guest discarded", hole, err)
	}
}
