package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/govmm/govmm/gdbstub"
	"github.com/govmm/govmm/machine"
)

// listenGDB opens -gdb's socket: tcp:HOST:PORT or unix:PATH. It runs
// before Landlock, which may keep govmm from binding sockets later.
func listenGDB(addr string) (net.Listener, string, error) {
	network, where, ok := strings.Cut(addr, ":")
	if !ok || where == "" || network != "tcp" && network != "unix" {
		return nil, "", fmt.Errorf("-gdb %q: give tcp:HOST:PORT (tcp:127.0.0.1:1234) or unix:PATH", addr)
	}
	l, err := net.Listen(network, where)
	if err != nil {
		return nil, "", fmt.Errorf("-gdb: %w", err)
	}
	target := l.Addr().String() // with the port the kernel chose for :0
	if network == "unix" {
		return l, where, nil
	}
	return l, target, nil
}

func init() {
	startGDB = serveGDB
}

// serveGDB waits for gdb on the listener and serves it; the machine stays
// held before its first instruction until gdb lets it go. The session
// ends when gdb detaches or kills the VM, or the VM ends; when gdb goes
// away without a word the guest runs on.
func serveGDB(fe *frontEnd, o *options, m *machine.Machine, stopRun func(), stderr io.Writer) error {
	l := o.inspect.gdbListener
	if l == nil {
		return errors.New("-gdb: no socket")
	}
	target := gdbstub.NewMachine(fe.d, stopRun)
	fe.ended = func(res machine.Result, err error) {
		switch {
		case err != nil:
			target.End(0, true, gdbstub.SIGSEGV) // the guest failed: gdb says it died
		default:
			target.End(res.Status, false, 0)
		}
		l.Close()
	}
	fmt.Fprintf(stderr, "govmm: waiting for gdb: target remote %s\n", o.inspect.gdbTarget)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			fe.done <- nil // the VM ended before gdb came
			return
		}
		defer conn.Close()
		l.Close() // one session
		var log io.Writer
		if o.verbose {
			log = stderr
		}
		err = gdbstub.New(target, conn, log).Serve(context.Background())
		if err != nil && !errors.Is(err, net.ErrClosed) {
			fmt.Fprintf(stderr, "govmm: gdb: %v\n", err)
		}
		fe.done <- nil
	}()
	return nil
}
