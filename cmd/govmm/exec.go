package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/images/agentproto"
	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// detectHost says what kind of KVM host this is.
func detectHost() kvm.HostKind { return kvm.DetectHost(os.DirFS("/")) }

// errTimedOut is the cause of a run stopped by -timeout.
var errTimedOut = errors.New("timed out")

// tailLines is how many of the console's last lines a failure shows.
const tailLines = 15

// runExec is govmm exec: it parses args, boots the default guest with the
// command for the agent, passes the command's output to stdout, and
// returns the command's status, or one of govmm exec's own (see
// execUsage) with an error.
func runExec(ctx context.Context, args []string, stdout, stderr io.Writer, host func() kvm.HostKind) (int, error) {
	o, err := parseExecFlags(args, stderr)
	if err != nil {
		return statusExecError, fmt.Errorf("exec: %w", err)
	}
	if o.help {
		return 0, nil
	}
	if err := checkHost(o, host(), stderr); err != nil {
		return statusExecError, fmt.Errorf("exec: %w", err)
	}
	cfg, err := execConfig(o)
	if err != nil {
		return statusExecError, fmt.Errorf("exec: %w", err)
	}
	var other io.Writer
	if o.verbose {
		other = stderr
	}
	filter := agentproto.NewFilter(stdout, other)
	cfg.SerialOut, cfg.Log = filter, stderr
	if err := confineFiles(&o.options, stderr); err != nil {
		return statusExecError, fmt.Errorf("exec: %w", err)
	}
	cfg.Confine = confineCalls(&o.options, stderr)
	m, err := machine.New(cfg)
	if err != nil {
		return statusExecError, fmt.Errorf("exec: %w", err)
	}
	defer m.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if o.timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, o.timeout, errTimedOut)
		defer stop()
	}
	res, runErr := m.Run(ctx)
	if o.verbose {
		fmt.Fprintf(stderr, "govmm exec: guest ended (%v, status %d, debug-exit %v) after %v\n", res.Reason, res.Status, res.DebugExit, time.Since(cfg.Start).Round(time.Millisecond))
	}
	status, err := execOutcome(o, res, runErr, context.Cause(ctx), filter, stderr)
	if ferr := filter.Err(); ferr != nil && err == nil {
		return statusExecError, fmt.Errorf("exec: %w", ferr)
	}
	return status, err
}

// checkHost refuses, or warns about, a host where Linux cannot reach user
// space.
func checkHost(o *execOptions, host kvm.HostKind, stderr io.Writer) error {
	if host != kvm.HostPVM {
		if _, err := os.Stat(o.kvmPath); err != nil {
			return fmt.Errorf("no KVM here (%v): on a host without /dev/kvm, run the command in the emulated machine with make run CMD='...' in the govmm checkout", err)
		}
		return nil
	}
	const why = "this is a PVM host (kvm_pvm, no vmx or svm), where a stock Linux kernel stops before user space"
	if o.kernel == "" {
		return fmt.Errorf("%s, so the default guest cannot run a command here: run it in the emulated machine with make run CMD='...' in the govmm checkout, or give a kernel that can with -kernel", why)
	}
	fmt.Fprintf(stderr, "govmm exec: warning: %s; trying %s anyway (-timeout %v bounds it)\n", why, o.kernel, o.timeout)
	return nil
}

// execConfig reads the guest's files and builds the machine's
// configuration, its serial output and log left for the caller.
func execConfig(o *execOptions) (machine.Config, error) {
	start := time.Now()
	kernelPath, initrdPath := o.kernel, o.initrd
	if kernelPath == "" || initrdPath == "" {
		g, err := imagesenv.Load(o.cacheDir)
		if err != nil {
			return machine.Config{}, fmt.Errorf("%w (or give -kernel and -initrd)", err)
		}
		if kernelPath == "" {
			kernelPath = g.Kernel
		}
		if initrdPath == "" {
			initrdPath = g.Initrd
		}
	}
	// Mapped, not read (boot.MapFile; machine.New reads them under
	// boot.Guard): govmm exec ends with its guest, and the mappings with it.
	kernel, _, err := boot.MapFile(kernelPath)
	if err != nil {
		return machine.Config{}, fmt.Errorf("reading the kernel: %w", err)
	}
	initrd, _, err := boot.MapFile(initrdPath)
	if err != nil {
		return machine.Config{}, fmt.Errorf("reading the initrd: %w", err)
	}
	cmdline, err := agentproto.Append(o.cmdline, agentproto.Config{
		Cmd:      o.command,
		ExitMMIO: uint64(boot.DebugExitMMIO) + devices.DebugExitStatus,
		Quiet:    !o.verbose,
	})
	if err != nil {
		return machine.Config{}, fmt.Errorf("-append: %w", err)
	}
	return machine.Config{
		KVMPath:  o.kvmPath,
		Kernel:   kernel,
		Initrd:   initrd,
		Cmdline:  cmdline,
		MemSize:  o.mem,
		CPUs:     o.cpus,
		Boot:     o.boot,
		CacheDir: o.cacheDir,
		Hide:     o.hide,
		Devices:  o.devices,
		PIT:      o.pit,
		Verbose:  o.verbose,
		Start:    start,
	}, nil
}

// execOutcome turns how the VM ended into govmm exec's status and error.
// cause is why the run's context ended, if it did.
func execOutcome(o *execOptions, res machine.Result, runErr, cause error, filter *agentproto.Filter, stderr io.Writer) (int, error) {
	phase := filter.Phase()
	var sig *stopSignal
	switch {
	case runErr != nil:
		var ge *vcpu.GuestError
		if errors.As(runErr, &ge) {
			fmt.Fprint(stderr, ge.Registers())
		}
		showTail(stderr, filter)
		return statusExecError, fmt.Errorf("exec: the VM failed %s: %w", during(phase), runErr)
	case res.DebugExit:
		if st, ok := filter.Status(); o.verbose && ok && st != res.Status {
			fmt.Fprintf(stderr, "govmm exec: the agent's exit marker said %d, the debug-exit device %d; using the device's\n", st, res.Status)
		}
		return res.Status, nil
	case res.Reason == vcpu.StopCanceled && errors.Is(cause, errTimedOut):
		showTail(stderr, filter)
		return statusTimedOut, fmt.Errorf("exec: timed out after %v (-timeout) %s; the VM was stopped", o.timeout, during(phase))
	case res.Reason == vcpu.StopCanceled && errors.As(cause, &sig):
		return sig.status(), fmt.Errorf("exec: %v %s; the VM was stopped", sig, during(phase))
	case res.Reason == vcpu.StopCanceled:
		return statusExecError, fmt.Errorf("exec: the VM was stopped %s", during(phase))
	}
	if st, ok := filter.Status(); ok {
		// The agent could not reach the debug-exit device and reset the
		// guest instead; its exit marker has the status.
		fmt.Fprintf(stderr, "govmm exec: warning: the guest ended with a %v, not through the debug-exit device; the status (%d) is the agent's exit marker's (-v shows why)\n", res.Reason, st)
		return st, nil
	}
	showTail(stderr, filter)
	why := likelyCause(phase)
	if p := filter.Panic(); p != "" {
		why = fmt.Sprintf("the kernel panicked (%q), which resets the guest, as panic=-1 asks", strings.ToValidUTF8(p, "?"))
	}
	return statusExecError, fmt.Errorf("exec: the guest ended (%v) %s without the command's exit status: %s", res.Reason, during(phase), why)
}

// during says when, in the agent's progress, something happened.
func during(p agentproto.Phase) string {
	switch p {
	case agentproto.Booting:
		return "before the command started"
	case agentproto.Running:
		return "while the command was running"
	}
	return "after the command ended"
}

// likelyCause guesses why a guest ended without a status.
func likelyCause(p agentproto.Phase) string {
	if p == agentproto.Booting {
		return "the kernel or its init failed (a panic resets the guest, as panic=-1 asks); see the console above, or run with -v"
	}
	return "the kernel panicked (which resets the guest, as panic=-1 asks) or the command rebooted or powered off the guest; see the console above"
}

// showTail writes the console's last lines to stderr, marked as a copy.
func showTail(stderr io.Writer, filter *agentproto.Filter) {
	lines := filter.Tail(tailLines)
	if len(lines) == 0 {
		fmt.Fprintln(stderr, "govmm exec: the guest printed nothing on its console")
		return
	}
	fmt.Fprintln(stderr, "govmm exec: the guest console's last lines:")
	for _, l := range lines {
		fmt.Fprintln(stderr, "  | "+strings.ToValidUTF8(l, "?"))
	}
}
