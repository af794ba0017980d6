// Package console is the host-terminal side of the guest's serial console:
// it puts the terminal in raw mode, feeds what the user types to the UART,
// and handles the Ctrl-A escape keys (see Escape).
//
// Guest output does not pass through here: the machine hands the UART the
// host's stdout directly.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Config says where input comes from and where it goes.
type Config struct {
	// In is the host input, usually os.Stdin. It is put in raw mode for the
	// life of the Console if it is a terminal.
	In *os.File
	// Sink takes bytes for the guest and returns how many it took, as
	// devices.Serial.Enqueue does. It must not block.
	Sink func([]byte) int
	// Room, if not nil, receives a value when Sink may take more
	// (devices.Serial.Room). Without it the reader retries on a backoff
	// timer alone.
	Room <-chan struct{}
	// Out receives the help text; nil discards it.
	Out io.Writer
	// OnQuit is called on the reader goroutine after Ctrl-A x, once the
	// reader has stopped; it may call Close.
	OnQuit func()
}

// Backoff bounds for retrying a full Sink when no Room signal comes.
const (
	minBackoff = time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

// Console reads the host terminal and feeds the guest. Close it always: it
// puts the terminal back.
type Console struct {
	cfg Config

	in      *os.File // what the reader reads: a private reopening of cfg.In, or cfg.In itself
	ownsIn  bool     // in is ours to close
	canStop bool     // a read on in can be interrupted with a deadline
	fd      int      // cfg.In's descriptor, for terminal modes
	saved   *term.State

	cancel    context.CancelFunc
	stopWatch func() bool
	done      chan struct{}
	err       error // why the reader stopped, set before done closes

	closeOnce sync.Once
	closeErr  error
}

// Start sets up the terminal and starts the reader. The reader stops when
// ctx is done, on Close, at the end of input, or after Ctrl-A x.
func Start(ctx context.Context, cfg Config) (*Console, error) {
	if cfg.In == nil || cfg.Sink == nil {
		return nil, errors.New("console: Config needs In and Sink: pass os.Stdin and the serial port's Enqueue")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	fd, err := rawFD(cfg.In)
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, fd: fd, done: make(chan struct{})}
	c.openInput()

	if term.IsTerminal(fd) {
		saved, err := term.MakeRaw(fd)
		if err != nil {
			if cerr := c.closeInput(); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return nil, fmt.Errorf("console: put terminal %s in raw mode: %w (run without a terminal on stdin, e.g. </dev/null, to skip it)", cfg.In.Name(), err)
		}
		c.saved = saved
	}

	ctx, c.cancel = context.WithCancel(ctx)
	c.stopWatch = context.AfterFunc(ctx, c.interrupt)
	go c.run(ctx)
	return c, nil
}

// rawFD returns f's descriptor without switching f to blocking mode, as
// f.Fd would.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("console: input %s has no descriptor: %w", f.Name(), err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return 0, fmt.Errorf("console: input %s: %w", f.Name(), err)
	}
	return fd, nil
}

// openInput picks the file the reader reads. Reopening the descriptor
// through /proc gives a terminal or pipe its own open file description, so
// Go can read it in non-blocking mode (and interrupt the read) without
// making stdout, which often shares the description with stdin,
// non-blocking too. If that fails, cfg.In is read as it is.
func (c *Console) openInput() {
	c.in = c.cfg.In
	path := fmt.Sprintf("/proc/self/fd/%d", c.fd)
	if f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOCTTY, 0); err == nil {
		c.in, c.ownsIn = f, true
	}
	// Only files Go polls take deadlines; a regular file reaches EOF anyway.
	c.canStop = c.in.SetReadDeadline(time.Time{}) == nil
}

// interrupt wakes a blocked read. Where the input cannot be interrupted
// (canStop is false) the reader stops at the next input instead.
func (c *Console) interrupt() {
	if !c.canStop {
		return
	}
	// This fails only once the reader has closed the file, when no read
	// is left to wake.
	_ = c.in.SetReadDeadline(time.Now())
}

func (c *Console) closeInput() error {
	if !c.ownsIn {
		return nil
	}
	if err := c.in.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("console: close input: %w", err)
	}
	return nil
}

// run is the reader goroutine. It closes the input it owns when it ends.
func (c *Console) run(ctx context.Context) {
	quit := false
	defer func() {
		if err := c.closeInput(); err != nil && c.err == nil {
			c.err = err
		}
		close(c.done)
		if quit && c.cfg.OnQuit != nil {
			c.cfg.OnQuit()
		}
	}()
	var esc Escape
	buf := make([]byte, 4096)
	var out []byte
	for {
		n, rerr := c.in.Read(buf)
		if ctx.Err() != nil {
			return
		}
		rest := buf[:n]
		for len(rest) > 0 {
			var cmd Command
			var k int
			out, cmd, k = esc.Decode(out[:0], rest)
			rest = rest[k:]
			if !c.deliver(ctx, out) {
				return
			}
			switch cmd {
			case Quit:
				quit = true
				return
			case Help:
				if _, err := io.WriteString(c.cfg.Out, HelpText); err != nil {
					c.err = fmt.Errorf("console: write help: %w", err)
					return
				}
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), errors.Is(rerr, os.ErrClosed):
			return
		case errors.Is(rerr, unix.EIO):
			return // the terminal hung up
		default:
			c.err = fmt.Errorf("console: read %s: %w", c.cfg.In.Name(), rerr)
			return
		}
	}
}

// deliver hands p to the sink, waiting for room when it is full. It
// reports false if ctx ended first.
func (c *Console) deliver(ctx context.Context, p []byte) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	wait := minBackoff
	for {
		n := c.cfg.Sink(p)
		p = p[n:]
		if len(p) == 0 {
			return true
		}
		if n > 0 {
			wait = minBackoff
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.cfg.Room:
		case <-timer.C:
			wait = min(2*wait, maxBackoff)
		}
	}
}

// Done is closed when the reader has stopped.
func (c *Console) Done() <-chan struct{} { return c.done }

// Err says why the reader stopped, once Done is closed: nil for the end of
// input, Close, ctx or Ctrl-A x.
func (c *Console) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close stops the reader, waits for it (unless the input cannot be
// interrupted: then it ends at the next input) and restores the terminal. It is safe to call more than
// once and from OnQuit.
func (c *Console) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		if c.canStop {
			<-c.done
		}
		c.stopWatch()
		var errs []error
		if c.saved != nil {
			if err := term.Restore(c.fd, c.saved); err != nil {
				errs = append(errs, fmt.Errorf("console: restore terminal: %w (run `stty sane` to fix it)", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}
