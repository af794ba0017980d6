package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// virtioRows: virtio-blk and virtio-net throughput of the test guest's own
// virtio driver (mode=virtio, images/testguest/src/virtio*.c), govmm
// against QEMU on q35 with its own virtio-pci devices, the same guest,
// the same disk file (cache=writeback both: the host's page cache) and
// the same TAP device. The bulk loops run in guest ring 3, posting
// batches and polling the used rings with interrupts suppressed; each is
// timed by the serial lines the guest prints right before and after it
// (the same few characters on either VMM).
func (s *suite) virtioRows(ctx context.Context) []row {
	if !s.wants("virtio") {
		return nil
	}
	dir, err := os.MkdirTemp("", "bench-virtio-")
	if err != nil {
		c := s.fail(err)
		return []row{{Name: "virtio", Govmm: c, Peer: c}}
	}
	defer os.RemoveAll(dir)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		c := s.fail(err)
		return []row{{Name: "virtio", Govmm: c, Peer: c}}
	}
	qemuWhy := s.qemuWhy
	if s.qemu == nil && qemuWhy == "" {
		qemuWhy = "n/a"
	}
	const seqN, randN, diskMiB = 64, 4096, 256
	seq := fmt.Sprintf("mode=virtio blk_verify=0 blk_sector=2048 blk_n=%d blk_bytes=1048576", seqN)
	rnd := fmt.Sprintf("mode=virtio blk_verify=0 blk_sector=2048 blk_n=%d blk_bytes=4096 blk_random=1", randN)
	type result struct {
		write, read []time.Duration
		exits       []float64 // govmm: exits to user space per request
		err         error
	}
	blkRun := func(v virtioVMM, cmdline string, res *result, keep bool) {
		if res.err != nil {
			return
		}
		if err := os.Truncate(disk, diskMiB<<20); err != nil {
			res.err = err
			return
		}
		t, err := runVirtio(ctx, v, cmdline, []string{"virtio-blk write start", "virtio-blk wrote n=", "virtio-blk read start", "virtio-blk read ok"}, s.timeout)
		if err != nil {
			res.err = err
			return
		}
		if keep {
			res.write = append(res.write, t.at[1]-t.at[0])
			res.read = append(res.read, t.at[3]-t.at[2])
			if t.exits >= 0 {
				n := seqN
				if strings.Contains(cmdline, "blk_random=1") {
					n = randN
				}
				res.exits = append(res.exits, float64(t.exits)/float64(2*n))
			}
		}
	}
	gv := govmmVirtio(s.govmm, "-drive", "file="+disk)
	var qv *virtioVMM
	if s.qemu != nil {
		q := qemuVirtio(s.qemu, "-drive", "file="+disk+",if=none,id=d0,format=raw,cache=writeback,aio=threads",
			"-device", "virtio-blk-pci,drive=d0,disable-legacy=on")
		qv = &q
	}
	var gs, qs, gr, qr result
	s.progress("virtio-blk: %d runs each of govmm and qemu -M q35, sequential 1 MiB and random 4 KiB (+1 warm-up)", s.runs)
	for i := 0; i <= s.runs; i++ {
		blkRun(gv, seq, &gs, i > 0)
		blkRun(gv, rnd, &gr, i > 0)
		if qv != nil {
			blkRun(*qv, seq, &qs, i > 0)
			blkRun(*qv, rnd, &qr, i > 0)
		}
	}
	rate := func(res *result, ds []time.Duration, per float64, isQEMU bool) cell {
		switch {
		case isQEMU && qv == nil:
			return missing(qemuWhy)
		case res.err != nil:
			return s.fail(res.err)
		case len(ds) == 0:
			return s.fail(errors.New("no runs"))
		}
		return value(per / median(ds).Seconds())
	}
	note := fmt.Sprintf("test guest's driver in ring 3, polled; peer: QEMU -M q35 -enable-kvm virtio-blk-pci (modern), same %d MiB file, cache=writeback; median of %d", diskMiB, s.runs)
	rows := []row{
		{Name: "virtio-blk sequential write, 1 MiB requests", Govmm: rate(&gs, gs.write, seqN, false), Peer: rate(&qs, qs.write, seqN, true), Unit: "MiB/s", Notes: note},
		{Name: "virtio-blk sequential read, 1 MiB requests", Govmm: rate(&gs, gs.read, seqN, false), Peer: rate(&qs, qs.read, seqN, true), Unit: "MiB/s", Notes: note},
		{Name: "virtio-blk random write, 4 KiB requests", Govmm: rate(&gr, gr.write, randN/1000.0, false), Peer: rate(&qr, qr.write, randN/1000.0, true), Unit: "kIOPS", Notes: note},
		{Name: "virtio-blk random read, 4 KiB requests", Govmm: rate(&gr, gr.read, randN/1000.0, false), Peer: rate(&qr, qr.read, randN/1000.0, true), Unit: "kIOPS", Notes: note},
	}
	exits := missing("failed")
	if gr.err == nil && len(gr.exits) > 0 {
		exits = value(medianFloat(gr.exits))
	}
	rows = append(rows, row{Name: "virtio-blk exits to govmm's vCPU loop per request", Govmm: exits, Peer: missing("n/a (QEMU does not count them)"), Unit: "exits",
		Notes: "random 4 KiB runs, boot included; notifications go through ioeventfds"})
	return append(rows, s.netRows(ctx, qemuWhy)...)
}

// netRows: guest->host frames over a TAP device in a network namespace
// of the bench's own (root only).
func (s *suite) netRows(ctx context.Context, qemuWhy string) []row {
	const small, big, smallN, bigN = 60, 1514, 100000, 50000
	names := []string{"virtio-net guest->host over TAP, 60-byte frames", "virtio-net guest->host over TAP, 1514-byte frames"}
	units := []string{"kframes/s", "MiB/s"}
	if os.Geteuid() != 0 {
		return []row{{Name: names[0], Govmm: missing("n/a (needs root)"), Peer: missing("n/a (needs root)"), Unit: units[0]}}
	}
	const tap = "bvtap0"
	type series struct {
		d   []time.Duration
		err error
	}
	var g, q [2]series
	s.progress("virtio-net: %d runs each of govmm and qemu -M q35, %d frames of %d bytes and %d of %d (+1 warm-up)", s.runs, smallN, small, bigN, big)
	err := inNetns(tap, func() {
		gv := govmmVirtio(s.govmm, "-net", "tap,ifname="+tap)
		var qv *virtioVMM
		if s.qemu != nil {
			v := qemuVirtio(s.qemu, "-netdev", "tap,id=n0,ifname="+tap+",script=no,downscript=no",
				"-device", "virtio-net-pci,netdev=n0,disable-legacy=on")
			qv = &v
		}
		sizes := [2][2]int{{small, smallN}, {big, bigN}}
		for i := 0; i <= s.runs; i++ {
			for k, sz := range sizes {
				cmd := fmt.Sprintf("mode=virtio net_me=0a000002 net_peer=0a000001 pings=0 net_send=%d net_len=%d", sz[1], sz[0])
				one := func(v virtioVMM, se *series) {
					if se.err != nil {
						return
					}
					t, err := runVirtio(ctx, v, cmd, []string{"virtio-net send start", "virtio-net sent n="}, s.timeout)
					if err != nil {
						se.err = err
					} else if i > 0 {
						se.d = append(se.d, t.at[1]-t.at[0])
					}
				}
				one(gv, &g[k])
				if qv != nil {
					one(*qv, &q[k])
				}
			}
		}
	})
	if err != nil {
		c := s.fail(err)
		return []row{{Name: names[0], Govmm: c, Peer: c, Unit: units[0]}}
	}
	per := [2]float64{smallN / 1000.0, bigN * big / float64(1<<20)}
	out := func(se *series, k int, isQEMU bool) cell {
		switch {
		case isQEMU && s.qemu == nil:
			return missing(qemuWhy)
		case se.err != nil:
			return s.fail(se.err)
		case len(se.d) == 0:
			return s.fail(errors.New("no runs"))
		}
		return value(per[k] / median(se.d).Seconds())
	}
	note := fmt.Sprintf("UDP to the TAP's address, sent from guest ring 3 (polled); peer: QEMU -M q35 -enable-kvm virtio-net-pci with -netdev tap (no vhost); median of %d", s.runs)
	var rows []row
	for k := range names {
		rows = append(rows, row{Name: names[k], Govmm: out(&g[k], k, false), Peer: out(&q[k], k, true), Unit: units[k], Notes: note})
	}
	return rows
}

// inNetns runs fn on a thread of its own in a new network namespace that
// holds TAP device tap at 10.0.0.1/24, up; the VMMs fn starts are born
// there. The thread is never unlocked, so it ends with the namespace.
func inNetns(tap string, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("a network namespace for the TAP benchmark: %w", err)
			return
		}
		defer ns.Close()
		t := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: tap}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_VNET_HDR | netlink.TUNTAP_NO_PI}
		if err := netlink.LinkAdd(t); err != nil {
			errc <- fmt.Errorf("TAP %s: %w", tap, err)
			return
		}
		for _, f := range t.Fds {
			f.Close()
		}
		if err := netlink.AddrAdd(t, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 0, 1), Mask: net.CIDRMask(24, 32)}}); err != nil {
			errc <- err
			return
		}
		if err := netlink.LinkSetUp(t); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	return <-errc
}

// virtioVMM is a VMM command line for mode=virtio with its devices.
type virtioVMM struct {
	name     string
	argv     []string // up to the guest command line
	okStatus int
	govmm    bool
}

func govmmVirtio(v vmm, devArgs ...string) virtioVMM {
	a := v.argv("", true) // -v: the exit statistics
	return virtioVMM{name: "govmm", argv: append(dropAppend(a), devArgs...), okStatus: 0, govmm: true}
}

// qemuVirtio is QEMU on q35 (PCI), whichever machine s.qemu boots.
func qemuVirtio(v *vmm, devArgs ...string) virtioVMM {
	base := v.argv("", false)
	kernel, mem := "", "512M"
	for i := 0; i+1 < len(base); i++ {
		switch base[i] {
		case "-kernel":
			kernel = base[i+1]
		case "-m":
			mem = base[i+1]
		}
	}
	a := []string{base[0], "-enable-kvm", "-M", "q35", "-cpu", "host", "-m", mem, "-nodefaults", "-display", "none",
		"-monitor", "none", "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"}
	return virtioVMM{name: "qemu", argv: append(a, devArgs...), okStatus: 1}
}

// dropAppend removes "-append X" from a command line.
func dropAppend(a []string) []string {
	var out []string
	for i := 0; i < len(a); i++ {
		if a[i] == "-append" {
			i++
			continue
		}
		out = append(out, a[i])
	}
	return out
}

// virtioTimes are when the awaited lines came, from the start, and
// govmm's exits to user space (-1 when unknown).
type virtioTimes struct {
	at    []time.Duration
	exits int
}

var exitsLine = regexp.MustCompile(`exits to user space: (\d+)`)

// runVirtio runs v on cmdline (which must end with the guest's "virtio
// ok") and times the first line starting with each of lines on its
// standard output.
func runVirtio(ctx context.Context, v virtioVMM, cmdline string, lines []string, timeout time.Duration) (virtioTimes, error) {
	res, err := runLines(ctx, v.argv, v.okStatus, cmdline, lines, "virtio ok", timeout)
	if err != nil {
		return virtioTimes{}, fmt.Errorf("%s: %w", v.name, err)
	}
	t := virtioTimes{at: res.at, exits: -1}
	if m := exitsLine.FindStringSubmatch(res.stderr); m != nil {
		t.exits, _ = strconv.Atoi(m[1])
	}
	return t, nil
}

// lineTimer keeps a program's output and when each awaited line began.
type lineTimer struct {
	mu    sync.Mutex
	start time.Time
	want  []string
	at    []time.Duration
	out   bytes.Buffer
	line  []byte
}

func (l *lineTimer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Since(l.start)
	l.out.Write(p)
	for _, b := range p {
		if b != '\n' {
			l.line = append(l.line, b)
			continue
		}
		s := strings.TrimRight(string(l.line), "\r")
		for i, w := range l.want {
			if l.at[i] == 0 && strings.HasPrefix(s, w) {
				l.at[i] = now
			}
		}
		l.line = l.line[:0]
	}
	return len(p), nil
}

func medianFloat(v []float64) float64 {
	ds := make([]time.Duration, len(v))
	for i, x := range v {
		ds[i] = time.Duration(x * 1e6)
	}
	return float64(median(ds)) / 1e6
}
