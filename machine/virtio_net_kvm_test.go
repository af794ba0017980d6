package machine

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// inNewNetns moves the calling goroutine, locked to its thread for good,
// into a new network namespace: what it opens (a TAP) stays there, and
// the thread ends with the test.
func inNewNetns(t *testing.T) {
	t.Helper()
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("a new network namespace: %v (the test needs root)", err)
	}
	t.Cleanup(func() { ns.Close() })
}

// TestVirtioNetTAPGuest: the test guest's driver sends ARP and ICMP echo
// requests through govmm's virtio-net into a TAP device, in a network
// namespace of the test's own, whose kernel answers: the frames cross
// both ways (MSI-X interrupts on both queues).
func TestVirtioNetTAPGuest(t *testing.T) {
	kvmtest.Require(t)
	inNewNetns(t)
	const tap = "gvtap0"
	var serial, log syncBuffer
	m, err := New(Config{
		KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), Cmdline: "mode=virtio net_me=0a000002 net_peer=0a000001 pings=3",
		MemSize: 128 << 20, CPUs: 1, Devices: []Device{"virtio-net,tap=" + tap + ",mac=52:54:00:aa:bb:cc"},
		SerialOut: &serial, Log: &log, Verbose: true,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	link, err := netlink.LinkByName(tap)
	if err != nil {
		t.Fatalf("govmm did not create %s: %v", tap, err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := m.Run(ctx)
	if err != nil || res.Status != testguest.ExitOK {
		t.Fatalf("Run() = %+v, %v; want status 0\nserial:\n%s\nlog:\n%s", res, err, serial.String(), log.String())
	}
	for _, w := range []string{"virtio-net mac=52:54:00:aa:bb:cc", "virtio-net arp reply from 0a000001 mac=" + link.Attrs().HardwareAddr.String(),
		"virtio-net ping reply seq=1", "virtio-net ping reply seq=3", "virtio-net ok", "virtio ok devices=1"} {
		if !strings.Contains(serial.String(), w) {
			t.Errorf("serial output lacks %q:\n%s", w, serial.String())
		}
	}
	st, err := netlink.LinkByName(tap)
	if err == nil && (st.Attrs().Statistics == nil || st.Attrs().Statistics.RxPackets < 4) {
		t.Errorf("%s received %+v, want the ARP request and 3 echo requests", tap, st.Attrs().Statistics)
	}
	t.Logf("%s", m.pci.report())
}
