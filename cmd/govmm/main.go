// Command govmm runs one virtual machine on Linux KVM.
//
//	govmm -kernel bzImage -initrd initrd.cpio -mem 512M -append "console=ttyS0"
//	govmm exec -- 'make -C /src test'   (a command in the default Linux guest)
//
// Long flags take one dash or two. See -h and exec -h for all of them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/govmm/govmm/jail"
)

// mainStart is when main began: the Go runtime and every package's init
// are done by then. -v reports how long the flags took from there.
var mainStart time.Time

func main() {
	mainStart = time.Now()
	ctx, stop := signalContext(context.Background())
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == fcName { // a symlink named firecracker
		args = append([]string{fcName}, args...)
	}
	status, err := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "govmm:", err)
		}
		if status == 0 {
			status = 1
		}
	}
	os.Exit(status)
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

// runElsewhere, when set, runs govmm in place of run. The tests set it
// (main_test.go) to run govmm as a child process: seccomp and Landlock
// confine a process for good, so a test binary must not run a VM itself.
var runElsewhere func(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (int, error)

// run parses args, builds the VM and runs it. It returns the process exit
// status: 0 when the guest powers off or resets, the guest's own status
// when it ends through the debug-exit device, non-zero with an error
// otherwise. "govmm exec ..." goes to runExec, with statuses of its own.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	if runElsewhere != nil {
		return runElsewhere(ctx, args, stdin, stdout, stderr)
	}
	if len(args) > 0 {
		switch args[0] {
		case "exec":
			return runExec(ctx, args[1:], stdout, stderr, detectHost)
		case "step":
			return runStep(ctx, args[1:], stdin, stdout, stderr)
		case "jail":
			return runJail(ctx, args[1:], stdin, stdout, stderr)
		case "ctl":
			return runCtl(ctx, args[1:], stdout, stderr)
		case fcName: // Firecracker's flags and API (firecracker.go)
			return runFirecracker(ctx, args[1:], stdout, stderr)
		case jail.InitArg: // the jail's PID 1, started by govmm jail
			return jail.Init(), nil
		case jailProbeArg: // the jail tests' stand-in for govmm
			return runJailProbe(args[1:], stdout)
		}
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2, err
	}
	if opts.help {
		return 0, nil
	}
	if opts.confine.printSeccomp {
		return printSeccomp(stdout)
	}
	if opts.dumpACPI != "" {
		return dumpACPI(opts, stdout)
	}
	if opts.inspect.gdb != "" {
		if err := debugOff(opts, args, "-gdb", stderr); err != nil {
			return 2, err
		}
		l, target, err := listenGDB(opts.inspect.gdb)
		if err != nil {
			return 2, err
		}
		defer l.Close()
		opts.inspect.gdbListener, opts.inspect.gdbTarget = l, target
	}
	return runVM(ctx, opts, stdin, stdout, stderr)
}
