package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// hostListeners serves one UDP and one TCP exchange on the host's
// loopback, as a guest's peers: each answers "hello udp" or "hello tcp"
// and reports what it got.
func hostListeners(t *testing.T) (udpPort, tcpPort int, got chan string) {
	t.Helper()
	got = make(chan string, 2)
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close(); l.Close() })
	go func() {
		b := make([]byte, 100)
		n, from, err := u.ReadFromUDP(b)
		if err != nil {
			return
		}
		got <- "udp " + string(b[:n])
		u.WriteToUDP([]byte("hello udp"), from)
	}()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- "tcp " + strings.TrimSpace(line)
		c.Write([]byte("hello tcp\n"))
	}()
	return u.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port, got
}

// TestGovmmVirtioDevices runs govmm itself (seccomp and Landlock on, as a
// user's govmm) with -drive, -rng and -net user on the test guest's
// driver: the disk takes the pattern, the guest gets its address by DHCP
// from the user-mode network, pings the gateway, and exchanges a UDP
// datagram and a TCP line with listeners on the host's loopback (through
// 192.168.127.254); no system call or file off the lists was needed.
func TestGovmmVirtioDevices(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	udpPort, tcpPort, got := hostListeners(t)
	serial := filepath.Join(dir, "serial")
	cmdline := fmt.Sprintf("mode=virtio blk_sector=8 blk_n=16 blk_bytes=4096 net_dhcp=1 pings=1 net_host=c0a87ffe udp_port=%d tcp_port=%d", udpPort, tcpPort)
	args := []string{"-kernel", g.ELF, "-mem", "128M", "-serial", "file:" + serial, "-cache", dir, "-v",
		"-drive", "file=" + disk, "-rng", "on", "-net", "user", "-append", cmdline}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	status, err := run(ctx, args, nil, &bytes.Buffer{}, &stderr)
	out, _ := os.ReadFile(serial)
	if status != 0 || err != nil {
		t.Fatalf("govmm = %d, %v; want 0\nserial:\n%s\nstderr:\n%s", status, err, out, stderr.String())
	}
	for _, w := range []string{"virtio-blk wrote n=16", "virtio-blk read ok n=16", "virtio-rng ok bytes=64",
		"virtio-net dhcp ip=c0a87f02 router=c0a87f01", "virtio-net arp reply from c0a87f01", "virtio-net ping reply seq=1",
		"virtio-net udp reply from c0a87ffe: hello udp", "virtio-net tcp reply: hello tcp", "virtio ok devices=3"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("serial output lacks %q:\n%s", w, out)
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case m := <-got:
			if m != "udp govmm udp" && m != "tcp govmm tcp" {
				t.Errorf("a host listener got %q", m)
			}
		default:
			t.Errorf("only %d of the host's listeners heard from the guest", i)
		}
	}
	if !strings.Contains(stderr.String(), "seccomp filter on") {
		t.Errorf("govmm did not say it ran under its seccomp filter:\n%s", stderr.String())
	}
}
