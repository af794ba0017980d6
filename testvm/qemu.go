package testvm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// qemuRun is how a QEMU process ended.
type qemuRun struct {
	err    error         // from starting or waiting for QEMU
	stderr string        // what QEMU said
	took   time.Duration // since it started
	stall  *StallError   // the watchdog gave up on the machine and killed QEMU
	beats  int           // heartbeats that came
}

// runQEMU runs QEMU with args until it exits, ctx ends, or the watchdog
// gives up on the machine. The console (QEMU's standard output) goes to
// console; the heartbeat comes through a pipe that QEMU gets as fd 3, and
// both count as signs of life for the watchdog, which reaches QEMU's
// monitor through mon and allows the boot grace on top of its limit.
func (c Config) runQEMU(ctx context.Context, args []string, console io.Writer, mon machineMonitor, grace time.Duration) qemuRun {
	qctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(qctx, c.QEMU, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphaned QEMU if we are killed
	cmd.WaitDelay = 5 * time.Second

	beatR, beatW, err := os.Pipe()
	if err != nil {
		return qemuRun{err: fmt.Errorf("testvm: a pipe for the heartbeat: %w", err)}
	}
	defer beatR.Close()
	cmd.ExtraFiles = []*os.File{beatW} // fd 3: /dev/fd/3 in qemuArgs

	var dog *watchdog
	alive := func() {}
	if c.Watchdog > 0 {
		dog = newWatchdog(c.Watchdog, grace, mon.poke, mon.report, c.logf)
		alive = dog.alive
	}
	beats := &beatScanner{alive: alive}
	cmd.Stdout = aliveWriter{console, alive}
	if c.Interactive {
		cmd.Stdin = os.Stdin
		restore := saveTerminal(os.Stdin)
		defer restore()
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	began := time.Now()
	err = cmd.Start()
	beatW.Close() // QEMU holds the write end now; its exit ends the stream
	if err != nil {
		return qemuRun{err: err, took: time.Since(began)}
	}
	beatsDone := make(chan struct{})
	go func() {
		defer close(beatsDone)
		_, _ = io.Copy(beats, beatR) // beatScanner never fails; a read error is the stream's end
	}()
	stalled := make(chan *StallError, 1)
	done := make(chan struct{})
	go func() {
		if dog == nil {
			stalled <- nil
			return
		}
		s := dog.run(done)
		if s != nil {
			kill()
		}
		stalled <- s
	}()
	err = cmd.Wait()
	close(done)
	stall := <-stalled
	<-beatsDone
	if stall != nil {
		stall.LastBeat = beats.last
	}
	return qemuRun{err: err, stderr: stderr.String(), took: time.Since(began), stall: stall, beats: beats.beats}
}

// aliveWriter passes writes on to w and calls alive for each.
type aliveWriter struct {
	w     io.Writer
	alive func()
}

func (a aliveWriter) Write(p []byte) (int, error) {
	a.alive()
	return a.w.Write(p)
}

// logf writes a line to c.Log; in an interactive run, whose terminal QEMU
// has put in raw mode, with a carriage return.
func (c Config) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if c.Interactive {
		line = "\r" + strings.ReplaceAll(line, "\n", "\r\n") + "\r"
	}
	fmt.Fprintln(c.Log, line)
}
