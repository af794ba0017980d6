package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/govmm/govmm/debugger"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/sandbox"
	"github.com/govmm/govmm/stepper"
	"github.com/govmm/govmm/vcpu"
)

// runStep is govmm step: govmm's flags, the guest held before its first
// instruction, and the stepper's commands read from stdin (a terminal or
// a pipe). The guest's serial output goes to stdout as usual; it gets no
// input.
func runStep(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2, fmt.Errorf("step: %w", err)
	}
	if o.help {
		fmt.Fprint(stderr, "\ngovmm step [govmm flags]: run the guest under the stepper, commands on stdin:\n\n"+stepper.Help)
		return 0, nil
	}
	o.inspect.step = true
	if err := debugOff(o, args, "govmm step", stderr); err != nil {
		return 2, fmt.Errorf("step: %w", err)
	}
	// The image's symbols, for "break putc" and for naming addresses:
	// read now, before Landlock closes the file system.
	if s, err := stepper.LoadSymbols(o.kernel); err == nil {
		o.inspect.symbols = s
	}
	return runVM(ctx, o, stdin, stdout, stderr)
}

// debugOff turns the seccomp filter off for the stepper and the gdb stub,
// which need KVM_SET_GUEST_DEBUG and, for gdb, a socket the filter does
// not allow. A -seccomp the user gave explicitly is an error instead.
func debugOff(o *options, args []string, what string, stderr io.Writer) error {
	if o.confine.seccomp == sandbox.SeccompOff {
		return nil
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if n := strings.TrimLeft(a, "-"); n == "seccomp" || strings.HasPrefix(n, "seccomp=") {
			return fmt.Errorf("%s needs -seccomp off: the filter does not allow KVM_SET_GUEST_DEBUG", what)
		}
	}
	o.confine.seccomp = sandbox.SeccompOff
	if o.verbose {
		fmt.Fprintf(stderr, "govmm: %s: the seccomp filter is off (it does not allow KVM_SET_GUEST_DEBUG)\n", what)
	}
	return nil
}

// frontEnd is the debugger and its front end (the stepper or the gdb stub)
// running beside the machine.
type frontEnd struct {
	d    *debugger.Debugger
	done chan error // the front end's goroutine ended
	// ended tells the front end how the VM ended (the gdb stub's W
	// packet); nil for the stepper.
	ended func(res machine.Result, err error)
	// waitForIt says runVM waits for the front end after the run, so its
	// last words come before govmm's; out gets govmm step's last line.
	waitForIt bool
	out       io.Writer
}

// hostNotes checks that the host can debug guests and says what it
// cannot, once, at the start: on PVM hosts KVM single-steps and stops at
// breakpoints only in the code it emulates.
func hostNotes(m *machine.Machine, stderr io.Writer) error {
	if n, err := m.CheckExtension(kvm.CapSetGuestDebug); err != nil || n == 0 {
		return fmt.Errorf("this host's KVM cannot debug guests (KVM_CAP_SET_GUEST_DEBUG = %d, %v): no stepper, no gdb stub here", n, err)
	}
	if m.Host() == kvm.HostPVM {
		fmt.Fprintln(stderr, "govmm: note: on this PVM host KVM single-steps and stops at breakpoints only in guest code it emulates (real mode, protected mode, ring 0); guest ring-3 code runs natively and runs through them")
	}
	return nil
}

// startFrontEnd attaches a debugger to m for govmm step or -gdb and
// starts the front end. It returns nil when neither is asked for.
// stopRun ends the VM (quit, gdb's k).
func startFrontEnd(o *options, m *machine.Machine, cfg machine.Config, stopRun func(), in *inspector, stdin *os.File, stdout, stderr io.Writer) (*frontEnd, error) {
	if !o.inspect.step && o.inspect.gdb == "" {
		return nil, nil
	}
	if o.reboot == rebootRestart {
		return nil, errors.New("govmm step and -gdb hold the first VM's vCPUs: they do not work with -reboot restart")
	}
	if err := hostNotes(m, stderr); err != nil {
		return nil, err
	}
	d := debugger.New(m.VCPUs(), m.Host() == kvm.HostPVM)
	for _, v := range m.VCPUs() {
		if cfg.Observer != nil {
			v.SetObserver(vcpu.Chain{cfg.Observer, d})
		} else {
			v.SetObserver(d)
		}
	}
	d.StopAll() // hold every vCPU before its first instruction
	fe := &frontEnd{d: d, done: make(chan error, 1)}
	if o.inspect.gdb != "" {
		return fe, startGDB(fe, o, m, stopRun, stderr)
	}
	d.StopAtGuestExit = true
	st := stepper.New(stepper.Config{
		Debugger:  d,
		Out:       stdout,
		Prompt:    stdin != nil && term.IsTerminal(int(stdin.Fd())),
		Highlight: isTerminal(stdout),
		Symbols:   o.inspect.symbols,
		Stats:     in.snapshot,
		Quit:      stopRun,
	})
	fe.waitForIt, fe.out = true, stdout
	var cmds io.Reader = strings.NewReader("")
	if stdin != nil {
		cmds = stdin
	}
	go func() { fe.done <- st.Run(context.Background(), cmds) }()
	return fe, nil
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// finish waits for the front end's last words (unless a signal stopped
// the run, when it may be waiting for input) and tells it how the VM
// ended.
func (fe *frontEnd) finish(ctx context.Context, res machine.Result, err error) error {
	if fe == nil {
		return nil
	}
	if fe.ended != nil {
		fe.ended(res, err)
	}
	var ferr error
	if fe.waitForIt && ctx.Err() == nil {
		ferr = <-fe.done
	}
	if fe.out != nil && err == nil {
		fmt.Fprintf(fe.out, "govmm step: the guest ended: %v, status %d\n", res.Reason, res.Status)
	}
	fe.d.Close()
	return ferr
}

// startGDB starts the gdb stub (gdb.go).
var startGDB = func(fe *frontEnd, o *options, m *machine.Machine, stopRun func(), stderr io.Writer) error {
	return errors.New("-gdb: not built yet")
}
