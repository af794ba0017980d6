package console

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sink collects what the console feeds the guest. It takes at most limit
// bytes in all (no limit if negative) until raised.
type sink struct {
	mu    sync.Mutex
	got   []byte
	limit int
	fed   chan struct{} // signalled after each call that took bytes
}

func newSink(limit int) *sink { return &sink{limit: limit, fed: make(chan struct{}, 100)} }

func (s *sink) take(p []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	if s.limit >= 0 {
		n = min(n, s.limit-len(s.got))
	}
	s.got = append(s.got, p[:n]...)
	if n > 0 {
		s.fed <- struct{}{}
	}
	return n
}

func (s *sink) bytes() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.got)
}

func (s *sink) setLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
}

// syncBuffer is a bytes.Buffer safe for the reader goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("os.Pipe: %v", err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func write(t *testing.T, w *os.File, s string) {
	t.Helper()
	if _, err := w.WriteString(s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// waitFor waits until cond holds, failing after a generous deadline; ch is
// signalled whenever cond may have changed.
func waitFor[T any](t *testing.T, ch <-chan T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestConsoleFeedsSinkAndQuits(t *testing.T) {
	r, w := pipe(t)
	s := newSink(-1)
	var help syncBuffer
	quit := make(chan struct{})
	var c *Console
	c, err := Start(context.Background(), Config{In: r, Sink: s.take, Out: &help, OnQuit: func() {
		if err := c.Close(); err != nil { // Close from OnQuit must not deadlock
			t.Errorf("Close from OnQuit: %v", err)
		}
		close(quit)
	}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	write(t, w, "echo hi\r\x01\x01\x01h")
	waitFor(t, s.fed, "input", func() bool { return s.bytes() == "echo hi\r\x01" })
	write(t, w, "ls\x01xnot sent")
	select {
	case <-quit:
	case <-time.After(10 * time.Second):
		t.Fatalf("OnQuit not called after Ctrl-A x")
	}
	if got, want := s.bytes(), "echo hi\r\x01ls"; got != want {
		t.Errorf("guest got %q, want %q", got, want)
	}
	if got := help.String(); got != HelpText {
		t.Errorf("help output = %q, want %q", got, HelpText)
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
}

func TestConsoleWaitsForRoom(t *testing.T) {
	r, w := pipe(t)
	s := newSink(3)
	room := make(chan struct{}, 1)
	c, err := Start(context.Background(), Config{In: r, Sink: s.take, Room: room})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	write(t, w, "abcdef")
	waitFor(t, s.fed, "first bytes", func() bool { return s.bytes() == "abc" })
	s.setLimit(-1)
	room <- struct{}{}
	waitFor(t, s.fed, "the rest after Room", func() bool { return s.bytes() == "abcdef" })
}

func TestConsoleBacksOffWithoutRoom(t *testing.T) {
	r, w := pipe(t)
	s := newSink(0)
	c, err := Start(context.Background(), Config{In: r, Sink: s.take})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Close()
	write(t, w, "xyz")
	s.setLimit(-1) // no Room signal: the backoff timer retries
	waitFor(t, s.fed, "input after backoff", func() bool { return s.bytes() == "xyz" })
}

func TestConsoleStops(t *testing.T) {
	tests := []struct {
		name string
		stop func(t *testing.T, c *Console, cancel context.CancelFunc, w *os.File)
	}{
		{"Close", func(t *testing.T, c *Console, _ context.CancelFunc, _ *os.File) {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}},
		{"context", func(_ *testing.T, _ *Console, cancel context.CancelFunc, _ *os.File) { cancel() }},
		{"EOF", func(_ *testing.T, _ *Console, _ context.CancelFunc, w *os.File) { w.Close() }},
		{"Close with full sink", func(t *testing.T, c *Console, _ context.CancelFunc, w *os.File) {
			write(t, w, "stuck")
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := pipe(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := Start(ctx, Config{In: r, Sink: newSink(0).take})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			tt.stop(t, c, cancel, w)
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("reader still running after %s", tt.name)
			}
			if err := c.Err(); err != nil {
				t.Errorf("Err() = %v, want nil", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestConsoleConfigErrors(t *testing.T) {
	r, _ := pipe(t)
	for _, cfg := range []Config{{In: r}, {Sink: newSink(-1).take}} {
		if c, err := Start(context.Background(), cfg); err == nil {
			c.Close()
			t.Errorf("Start(%+v) = nil error, want one", cfg)
		}
	}
}

// openPTY returns a pseudo-terminal pair, or skips.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var n int
	err = withFD(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		t.Skipf("cannot unlock a pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open pseudo-terminal %d: %v", n, err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func withFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func lflag(t *testing.T, f *os.File) uint32 {
	t.Helper()
	var tio *unix.Termios
	if err := withFD(f, func(fd int) (err error) {
		tio, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}); err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	return tio.Lflag
}

func TestConsoleRawModeRestored(t *testing.T) {
	m, s := openPTY(t)
	before := lflag(t, s)
	if before&unix.ICANON == 0 {
		t.Fatalf("new pty is not in canonical mode (lflag %#x)", before)
	}
	sk := newSink(-1)
	c, err := Start(context.Background(), Config{In: s, Sink: sk.take})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got := lflag(t, s); got&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("lflag while running = %#x, want ICANON, ECHO, ISIG clear", got)
	}
	write(t, m, "\x03ok") // Ctrl-C reaches the guest in raw mode, no newline needed
	waitFor(t, sk.fed, "pty input", func() bool { return sk.bytes() == "\x03ok" })
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := lflag(t, s); got != before {
		t.Errorf("lflag after Close = %#x, want %#x", got, before)
	}
	if !strings.Contains(HelpText, "Ctrl-A x") {
		t.Errorf("HelpText does not mention Ctrl-A x")
	}
}
