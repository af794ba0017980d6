package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/kvm/kvmtest"
)

func requireImages(t *testing.T) string {
	t.Helper()
	kvmtest.RequireLinux(t)
	cache := kvmtest.CacheDir()
	if _, err := imagesenv.Load(cache); err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return cache
}

// TestLinuxVirtioUserNet: Debian's kernel under govmm (seccomp on) finds
// the virtio-net and virtio-rng devices, gets its address by DHCP from
// -net user, and wget fetches a page from an HTTP server on the host's
// loopback through 192.168.127.254; the kernel takes its entropy from
// virtio-rng.
func TestLinuxVirtioUserNet(t *testing.T) {
	cache := requireImages(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello over -net user")
	})}
	go srv.Serve(l)
	defer srv.Close()
	port := l.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`ip link set eth0 up
dhclient -ipv6=false -timeout 30 eth0 >/dev/null 2>&1 || echo dhclient failed
ip -4 addr show dev eth0 | grep inet
wget -O /tmp/page http://192.168.127.254:%d/ && cat /tmp/page
echo RNG $(cat /sys/class/misc/hw_random/rng_current)
`, port)
	args := []string{"exec", "-cache", cache, "-kvm", kvmtest.Path(), "-timeout", "4m", "-net", "user", "-rng", "on", "--", script}
	var stdout, stderr bytes.Buffer
	status, err := run(t.Context(), args, nil, &stdout, &stderr)
	out := stdout.String()
	if status != 0 || err != nil {
		t.Fatalf("govmm exec -net user = %d, %v\nstdout:\n%s\nstderr:\n%s", status, err, out, stderr.String())
	}
	for _, want := range []string{"inet 192.168.127.2/24", "hello over -net user", "RNG virtio_rng.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("guest output lacks %q:\n%s", want, out)
		}
	}
}

// addTestTAP makes a TAP device called name (virtio_net_hdr, no packet
// information) in this thread's network namespace, with the address
// 10.0.0.1/24, up: the guest's peer.
func addTestTAP(t *testing.T, name string) {
	t.Helper()
	tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_NO_PI}
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
}

// serveDownload serves 4 MiB of a known pattern over HTTP on 10.0.0.1
// (in this thread's network namespace) until the test ends, and returns
// the bytes and the port.
func serveDownload(t *testing.T) ([]byte, int) {
	t.Helper()
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	l, err := net.Listen("tcp4", "10.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return big, l.Addr().(*net.TCPAddr).Port
}

// TestLinuxVirtioTAP: the guest pings a peer over a TAP device in a
// network namespace the test made (the TAP, made beforehand with its
// address, is the peer: its kernel answers).
func TestLinuxVirtioTAP(t *testing.T) {
	cache := requireImages(t)
	runtime.LockOSThread() // govmm starts from this thread, in the namespace; never unlocked
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("a network namespace: %v", err)
	}
	defer ns.Close()
	addTestTAP(t, "gvtap9")
	// A download through the TAP: Linux's TCP with the checksum and
	// segmentation offloads govmm offers (virtio_net_hdr through to the
	// host's kernel) and merged receive buffers, checked by its hash.
	big, port := serveDownload(t)
	script := fmt.Sprintf(`ip addr add 10.0.0.2/24 dev eth0
ip link set eth0 up
ping -c 3 -w 2000 10.0.0.1 && echo PING OK
wget -O /tmp/big http://10.0.0.1:%d/ && sha256sum /tmp/big
echo FEATURES $(cat /sys/class/net/eth0/device/features)
`, port)
	args := []string{"exec", "-cache", cache, "-kvm", kvmtest.Path(), "-timeout", "4m", "-net", "tap,ifname=gvtap9", "--", script}
	var stdout, stderr bytes.Buffer
	status, err := run(t.Context(), args, nil, &stdout, &stderr)
	if status != 0 || err != nil || !strings.Contains(stdout.String(), "PING OK") {
		t.Fatalf("govmm exec -net tap = %d, %v; want the guest's pings answered\nstdout:\n%s\nstderr:\n%s", status, err, stdout.String(), stderr.String())
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(big)); !strings.Contains(stdout.String(), sum) {
		t.Errorf("the guest's download does not hash to %s:\n%s", sum, stdout.String())
	}
	// The features Linux's driver accepted, bit 0 first: the offloads
	// (CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7, HOST_TSO4 11) and merged
	// receive buffers (15) were in use for that download.
	_, feat, _ := strings.Cut(stdout.String(), "FEATURES ")
	for _, bit := range []int{0, 1, 7, 11, 15} {
		if len(feat) <= bit || feat[bit] != '1' {
			t.Errorf("the guest's virtio-net driver did not take feature bit %d: %q", bit, feat)
		}
	}
}
