package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// execOptions are the parsed command line of govmm exec.
type execOptions struct {
	options
	timeout time.Duration
	command string // shell text for the guest's /bin/sh -c
}

// Kernel command lines of govmm exec: quiet keeps the boot short (each
// console byte is a VM exit) and out of the way; -v shows the boot.
const (
	execCmdline        = "console=ttyS0 reboot=k panic=-1 quiet"
	execVerboseCmdline = "console=ttyS0 reboot=k panic=-1"
)

// defaultExecTimeout bounds a govmm exec run, boot included, unless
// -timeout says otherwise.
const defaultExecTimeout = 10 * time.Minute

// Exit statuses of govmm exec besides the command's own, chosen as
// timeout(1) and `docker run` do.
const (
	statusTimedOut  = 124 // -timeout passed
	statusExecError = 125 // govmm exec itself failed: flags, images, KVM, a guest that ended without a status
)

const execUsage = `Usage: govmm exec [flags] -- CMD...

Boots the default Linux guest (Debian's cloud kernel and govmm's initrd,
as named by images.env in the -cache folder, which ` + "`make images`" + ` writes),
runs CMD in its shell, and exits with CMD's exit status.

  govmm exec -- 'echo hi; exit 3'   one argument is shell text, as with sh -c
  govmm exec -- ls -l /             several are quoted word by word

Only CMD's output reaches standard output, as it comes and byte for byte;
its standard error goes there too (the guest has one console), and its
standard input is /dev/null. The kernel's and the guest agent's lines are
held back (-v shows them on standard error). Kernel messages printed while
CMD runs, such as a panic's, share the console and reach standard output.

Exit status: CMD's own (0-255); 124 when -timeout passes (the VM is
stopped); 125 when govmm exec fails, with a one-line reason: bad flags, no
images, no KVM, or a guest that ended without CMD's status (a kernel panic
resets it), in which case the console's last lines come first on standard
error; 130 or 143 when SIGINT (Ctrl-C) or SIGTERM stops it.

On a PVM host (kvm_pvm) a stock kernel cannot reach user space, so with
the default kernel govmm exec fails at once and says to use
` + "`make run CMD='...'`" + `, which runs it in an emulated machine; with -kernel it
warns and tries.

Flags (one dash or two):
`

// parseExecFlags reads govmm exec's command line (the words after "exec").
func parseExecFlags(args []string, stderr io.Writer) (*execOptions, error) {
	fs := pflag.NewFlagSet("govmm exec", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &execOptions{}
	var v vmFlagValues
	fs.StringVar(&o.kernel, "kernel", "", "the guest kernel (default: the one images.env names)")
	fs.StringVar(&o.initrd, "initrd", "", "the initrd with govmm's guest agent (default: the one images.env names)")
	fs.StringVar(&o.cmdline, "append", execCmdline, "the kernel command line; govmm exec adds the agent's govmm.* parameters (with -v, the default drops quiet)")
	addVMFlags(fs, &o.options, &v)
	fs.Lookup("cache").Usage = "the folder with images.env (from make images) and the cache of decompressed kernels"
	fs.DurationVar(&o.timeout, "timeout", defaultExecTimeout, "stop the VM and exit 124 after this long, boot included (0: no limit)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "show the whole console (on standard error) and what the VMM does")
	fs.BoolVarP(&o.help, "help", "h", false, "print this help")
	fs.Usage = func() {
		fmt.Fprint(stderr, execUsage)
		fs.PrintDefaults()
	}
	dash := slices.Index(args, "--")
	flags, command := args, []string(nil)
	if dash >= 0 {
		flags, command = args[:dash], args[dash+1:]
	}
	if err := fs.Parse(longDashes(fs, flags)); err != nil {
		if err == pflag.ErrHelp {
			return &execOptions{options: options{help: true}}, nil
		}
		return nil, fmt.Errorf("%w (run govmm exec -h for the flags)", err)
	}
	if o.help {
		fs.Usage()
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: put the command after --, as in govmm exec [flags] -- %s", fs.Arg(0), shellJoin(fs.Args()))
	}
	if dash < 0 || len(command) == 0 {
		return nil, fmt.Errorf("no command: give it after --, as in govmm exec -- 'echo hi' (run govmm exec -h)")
	}
	o.command = commandText(command)
	if strings.TrimSpace(o.command) == "" {
		return nil, fmt.Errorf("the command after -- is empty: give one to run, as in govmm exec -- 'echo hi'")
	}
	if err := v.apply(&o.options); err != nil {
		return nil, err
	}
	if !o.debugDevices {
		return nil, fmt.Errorf("-debug-devices off: govmm exec needs the debug-exit device, through which the guest agent ends the VM with the command's status; run the guest with govmm -kernel ... -debug-devices off instead")
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("-timeout %v: give a positive duration like 30s or 10m, or 0 for no limit", o.timeout)
	}
	if o.verbose && !fs.Changed("append") {
		o.cmdline = execVerboseCmdline
	}
	return o, nil
}
