package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/govmm/govmm/gdbstub"
	"github.com/govmm/govmm/images/testguest/lessons"
)

// traceRows: what seeing inside costs (-only trace). The port-I/O loop
// of mode=pio (ring 0 writes to port 0xf6; on PVM hosts ring 3 cannot do
// port I/O, so the loop runs in ring 0 on every host) as exits per
// second, for govmm with no observer, with its defaults (exit statistics
// and the flight recorder), and with -trace writing a JSON line per exit,
// each against cvmm's same loop. Then the gdb stub's step: from gdb's s
// packet to the stop reply, on the long-mode lesson's 64-bit code.
func (s *suite) traceRows(ctx context.Context) []row {
	if !s.wants("trace") {
		return nil
	}
	tmp, err := os.MkdirTemp("", "govmm-bench-trace-")
	if err != nil {
		c := s.fail(err)
		return []row{{Name: "exits/s with tracing", Govmm: c, Peer: c, Unit: "exits/s"}}
	}
	defer os.RemoveAll(tmp)
	with := func(name string, extra ...string) vmm {
		v := s.govmm
		argv := v.argv
		v.name = name
		v.argv = func(cmdline string, verbose bool) []string { return append(argv(cmdline, verbose), extra...) }
		return v
	}
	configs := []struct {
		what string
		v    vmm
	}{
		{"no observers (-exit-stats=false -flight 0)", with("govmm", "-exit-stats=false", "-flight", "0")},
		{"defaults: exit statistics, flight recorder", s.govmm},
		{"tracing on (-trace FILE)", with("govmm", "-trace", filepath.Join(tmp, "trace.json"))},
	}
	s.progress("trace: %d runs each of cvmm and govmm in %d configurations, mode=pio n=%d and n=0 (+1 warm-up)", s.runs, len(configs), s.n)
	peer, peerNote := s.exitsPerSecond(ctx, s.cvmm)
	var rows []row
	for _, c := range configs {
		g, note := s.exitsPerSecond(ctx, c.v)
		rows = append(rows, row{Name: "port-I/O exits per second, " + c.what, Govmm: g, Peer: peer, Unit: "exits/s",
			Notes: join(fmt.Sprintf("peer cvmm; n/(wall n=%d - wall n=0):", s.n), note, peerNote)})
	}
	return append(rows, s.gdbStepRow(ctx, tmp))
}

// exitsPerSecond runs mode=pio with n exits and with none, and gives n
// over the difference.
func (s *suite) exitsPerSecond(ctx context.Context, v vmm) (cell, string) {
	var withN, none []time.Duration
	for i := 0; i <= s.runs; i++ {
		a, err := runOnce(ctx, v, fmt.Sprintf("mode=pio n=%d", s.n), false, s.timeout, fmt.Sprintf("pio done n=%d", s.n))
		if err != nil {
			return s.fail(err), ""
		}
		b, err := runOnce(ctx, v, "mode=pio n=0", false, s.timeout, "pio done n=0")
		if err != nil {
			return s.fail(err), ""
		}
		if i > 0 {
			withN, none = append(withN, a.wall), append(none, b.wall)
		}
	}
	d := median(withN) - median(none)
	if d <= 0 {
		return s.fail(fmt.Errorf("%s: %d exits took no time", v.name, s.n)), ""
	}
	return value(float64(s.n) / d.Seconds()), fmt.Sprintf("%s %.0f-%.0f ms", v.name, durationMS(median(withN)), durationMS(median(none)))
}

// gdbSteps is how many steps the gdb row times: the long-mode lesson runs
// about a thousand instructions before it ends.
const gdbSteps = 500

// gdbStepRow times the gdb stub's single step: govmm -gdb on the long-mode
// lesson, a client that sends s and waits for the stop reply gdbSteps
// times, starting in the guest's real-mode code.
func (s *suite) gdbStepRow(ctx context.Context, tmp string) row {
	name := "gdb stub single step, s to stop reply"
	fail := func(err error) row {
		c := s.fail(fmt.Errorf("gdb step: %w", err))
		return row{Name: name, Govmm: c, Peer: missing("n/a"), Unit: "us"}
	}
	dir, err := lessons.Build(s.cacheDir())
	if err != nil {
		return fail(err)
	}
	s.progress("gdb: %d runs of %d single steps through govmm -gdb", s.runs, gdbSteps)
	var per []time.Duration
	for i := 0; i < s.runs; i++ {
		d, err := gdbSteps1(ctx, s.govmmBin(), filepath.Join(dir, "longmode.elf"), filepath.Join(tmp, fmt.Sprintf("gdb%d.sock", i)))
		if err != nil {
			return fail(err)
		}
		per = append(per, d)
	}
	return row{Name: name, Govmm: value(float64(median(per)) / float64(time.Microsecond)), Peer: missing("n/a"), Unit: "us",
		Notes: fmt.Sprintf("median of %d runs of %d steps over a unix socket, the guest's real-mode and protected-mode code (emulated by KVM on PVM hosts)", s.runs, gdbSteps)}
}

// gdbSteps1 runs govmm -gdb once and returns the mean time of a step.
func gdbSteps1(ctx context.Context, govmm, image, sock string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, govmm, "-kernel", image, "-boot", "real", "-mem", "16M", "-serial", "none", "-gdb", "unix:"+sock)
	stderr := &waitWriter{want: "waiting for gdb", seen: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	select {
	case <-stderr.seen:
	case <-ctx.Done():
		return 0, fmt.Errorf("govmm did not wait for gdb: %s", stderr.String())
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	c := &gdbClient{conn: conn}
	if _, err := c.ask("QStartNoAckMode"); err != nil {
		return 0, err
	}
	c.noAck = true
	start := time.Now()
	for range gdbSteps {
		r, err := c.ask("s")
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(r, "T05") {
			return 0, fmt.Errorf("step: stop reply %q", r)
		}
	}
	d := time.Since(start) / gdbSteps
	_, err = c.ask("k")
	if errors.Is(err, net.ErrClosed) || err != nil && strings.Contains(err.Error(), "EOF") {
		err = nil
	}
	return d, err
}

// gdbClient is the least of gdb: send a packet, read the reply.
type gdbClient struct {
	conn  net.Conn
	buf   []byte
	noAck bool
}

func (c *gdbClient) ask(p string) (string, error) {
	if _, err := c.conn.Write(gdbstub.Frame([]byte(p))); err != nil {
		return "", err
	}
	if p == "k" {
		return "", nil // no reply
	}
	chunk := make([]byte, 4096)
	for {
		ev, n, err := gdbstub.ParseEvent(c.buf)
		c.buf = c.buf[n:]
		if err == nil && ev.Kind == gdbstub.EventPacket {
			if !c.noAck {
				if _, err := c.conn.Write([]byte("+")); err != nil {
					return "", err
				}
			}
			return string(ev.Payload), nil
		}
		if err == nil {
			continue // an ack
		}
		m, rerr := c.conn.Read(chunk)
		if rerr != nil {
			return "", rerr
		}
		c.buf = append(c.buf, chunk[:m]...)
	}
}

// waitWriter closes seen once the text written contains want.
type waitWriter struct {
	mu   sync.Mutex
	text strings.Builder
	want string
	seen chan struct{}
	once sync.Once
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text.Write(p)
	if strings.Contains(w.text.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *waitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text.String()
}

// govmmBin is the govmm binary the suite measures.
func (s *suite) govmmBin() string { return s.govmm.argv("", false)[0] }

// cacheDir is the cache folder the suite gives govmm.
func (s *suite) cacheDir() string {
	a := s.govmm.argv("", false)
	for i := range a {
		if a[i] == "-cache" && i+1 < len(a) {
			return a[i+1]
		}
	}
	return ".cache"
}
