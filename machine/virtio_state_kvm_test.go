package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/memory"
)

// waitSerial waits until the serial output holds want, or the run ends.
func waitSerial(t *testing.T, serial *syncBuffer, done <-chan error, want string) {
	t.Helper()
	limit := time.Now().Add(time.Minute)
	for !strings.Contains(serial.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("the guest ended (%v) before %q; serial:\n%s", err, want, serial.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(limit) {
			t.Fatalf("no %q in a minute; serial:\n%s", want, serial.String())
		}
	}
}

// copyRAM returns a copy of mem, as a snapshot's memory file would give
// it back.
func copyRAM(t *testing.T, mem *memory.Memory) *memory.Memory {
	t.Helper()
	dup, err := memory.New(mem.Size())
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range mem.Regions() {
		copy(dup.Regions()[i].Host, r.Host)
	}
	return dup
}

// feedTAP gives the TAP an address and a neighbour entry for the guest,
// sends n UDP datagrams to the guest through it, and waits until the
// card has taken them.
func feedTAP(t *testing.T, m *Machine, tap, mac string, n int) {
	t.Helper()
	link, err := netlink.LinkByName(tap)
	if err != nil {
		t.Fatalf("no %s: %v", tap, err)
	}
	hw, _ := net.ParseMAC(mac)
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT, IP: net.IPv4(10, 0, 0, 2), HardwareAddr: hw}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", "10.0.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nd := m.pci.virtio[0].net
	want := nd.RxFrames.Load() + uint64(n)
	for i := 0; i < n; i++ {
		if _, err := conn.Write([]byte("to the guest")); err != nil {
			t.Fatal(err)
		}
	}
	limit := time.Now().Add(30 * time.Second)
	for nd.RxFrames.Load() < want && time.Now().Before(limit) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := nd.RxFrames.Load(); got < want {
		t.Fatalf("the card received %d frames (%d dropped), want %d", got, nd.RxDropped.Load(), want)
	}
}

// TestVirtioNetRestoreReceives: the test guest, with a virtio-net card
// on a TAP (its receive buffers posted) and its virtio-blk loop running,
// is paused and its state and RAM taken; the machine goes, and with it
// the TAP. A new machine restored from them, in this process, makes the
// TAP again and takes frames from it into the receive buffers the guest
// posted before the pause (the restored receive queue, at the indices
// where it stopped), interrupting the guest for them, while the loop
// goes on to its end.
func TestVirtioNetRestoreReceives(t *testing.T) {
	kvmtest.Require(t)
	inNewNetns(t)
	const tap, mac, rounds = "gvrst0", "52:54:00:aa:bb:02", 600
	disk := newDisk(t, 8<<20)
	devs := []Device{Device("virtio-net,tap=" + tap + ",mac=" + mac), Device("virtio-blk,file=" + disk)}
	var serial syncBuffer
	src, err := New(Config{
		KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), MemSize: 128 << 20, CPUs: 1, Devices: devs, SerialOut: &serial,
		Cmdline: fmt.Sprintf("mode=virtio blk_sector=64 blk_n=64 blk_bytes=4096 blk_loop=%d", rounds),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer src.Close()
	done := make(chan error, 1)
	go func() { _, err := src.Run(context.Background()); done <- err }()
	waitSerial(t, &serial, done, "VVVVVVVVVV")
	feedTAP(t, src, tap, mac, 3) // the receive queue's indices move on from 0
	ctx := context.Background()
	if err := src.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := src.SaveState()
	if err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	ram := copyRAM(t, src.Memory())
	src.Stop()
	<-done
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	c := Config{KVMPath: kvmtest.Path(), Devices: devs, Restore: &Restore{State: st, Memory: ram}}
	var out syncBuffer
	c.ApplySaved(st.Config)
	c.SerialOut = &out
	dst, err := New(c)
	if err != nil {
		t.Fatalf("New (restore): %v", err)
	}
	defer dst.Close()
	if _, err := netlink.LinkByName(tap); err != nil {
		t.Fatalf("the restored machine did not make %s again: %v", tap, err)
	}
	rdone := make(chan error, 1)
	go func() {
		res, err := dst.Run(context.Background())
		if err == nil && (res.Status != testguest.ExitOK || !res.DebugExit) {
			err = fmt.Errorf("Run() = %+v, want status 0", res)
		}
		rdone <- err
	}()
	feedTAP(t, dst, tap, mac, 5)
	nd := dst.pci.virtio[0].net
	// The receive queue went on from where it stopped: one chain a
	// frame past the saved used index, published in the guest's ring.
	var saved virtioState
	if err := json.Unmarshal(st.Devices["virtio-net@00:01.0"].State, &saved); err != nil {
		t.Fatal(err)
	}
	if err := dst.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	now, err := dst.VirtioTransports()[0].State()
	if err != nil {
		t.Fatal(err)
	}
	rx, was := now.Queues[0], saved.Transport.Queues[0]
	frames := uint16(nd.RxFrames.Load() + nd.RxDropped.Load())
	usedIdx, err := dst.Memory().LoadUint16(memory.GuestAddr(rx.Device + 2))
	if err != nil {
		t.Fatal(err)
	}
	if rx.NextUsed-was.NextUsed != frames || usedIdx != rx.NextUsed || was.NextUsed == 0 {
		t.Errorf("receive queue: used index %d saved, %d now for %d frames, %d in the guest's ring; want the saved one (not 0) plus a chain a frame, published", was.NextUsed, rx.NextUsed, frames, usedIdx)
	}
	if err := dst.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-rdone:
		if err != nil {
			t.Fatalf("restored guest: %v; serial:\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		dst.Stop()
		t.Fatalf("the restored guest did not end; serial:\n%s", out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("virtio-blk loop ok rounds=%d", rounds)) {
		t.Errorf("the restored guest's output lacks the loop's end:\n%s", out.String())
	}
	if tr := dst.VirtioTransports()[0]; tr.Broken() != 0 || tr.IRQErrors() != 0 {
		t.Errorf("restored virtio-net: %d broken, %d interrupt errors", tr.Broken(), tr.IRQErrors())
	}
}
