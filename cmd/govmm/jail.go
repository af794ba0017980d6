package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/jail"
)

const jailUsage = `Usage: govmm jail -uid UID -gid GID [jail flags] -- [govmm flags]

Runs govmm in a jail of its own: new mount, PID, IPC and UTS namespaces (and
a network namespace with -netns), a fresh read-only root holding only govmm,
its kernel, initrd and serial file (bind-mounted at their own paths) and
/dev/kvm (a device node owned by UID), a cgroup with the limits below, UID
and GID with no capabilities, no_new_privs and rlimits. govmm is PID 1 in
it, confines itself further with Landlock and seccomp, and has no kernel
cache (the fast path decompresses in memory). Needs root.

  govmm jail -uid 1000 -gid 1000 -memory 600M -cpu-quota 1 -- -kernel bzImage -mem 512M

Exit status: govmm's, or 128+n when signal n killed it (159: its seccomp
filter denied a call; 137 with an OOM message: the memory limit); 1 with a
one-line reason when the jail cannot be built, leaving nothing behind.

Jail flags (one dash or two):
`

// jailOptions are govmm jail's own flags.
type jailOptions struct {
	cfg                    jail.Config
	memory, fsize, version string
	verbose, help          bool
}

// parseJailFlags reads the jail's flags, up to "--"; the rest are
// govmm's.
func parseJailFlags(args []string, stderr io.Writer) (*jailOptions, []string, error) {
	fs := pflag.NewFlagSet("govmm jail", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &jailOptions{}
	c := &o.cfg
	fs.StringVar(&c.ID, "id", "vm-"+strconv.Itoa(os.Getpid()), "the jail's name: its folder under -base, its cgroup (govmm-ID) and host name")
	fs.IntVar(&c.UID, "uid", -1, "the user ID govmm runs as (required)")
	fs.IntVar(&c.GID, "gid", -1, "the group ID govmm runs as (required)")
	fs.StringVar(&c.BaseDir, "base", "/run/govmm-jail", "the folder that holds a folder per running jail (made and removed as needed)")
	fs.StringVar(&c.NetNS, "netns", "", "new: an empty network namespace of its own; PATH: join that one (/var/run/netns/NAME); default: the host's")
	fs.StringVar(&c.TAP, "tap", "", "a TAP device to move into the jail's new network namespace (-netns new), and back when it ends")
	fs.StringVar(&c.Cgroup.Parent, "cgroup-parent", "", "the cgroup the jail's goes under: a path relative to the jailer's own cgroup (default: the jailer's own), or from the hierarchy's root if it starts with /")
	fs.StringVar(&o.version, "cgroup-version", "auto", "auto (each controller from a v1 hierarchy that has it, else v2), 1 or 2")
	fs.Float64Var(&c.Cgroup.CPUs, "cpu-quota", 0, "CPU time in CPUs (0.5: half of one) per 100 ms period; 0: no limit")
	fs.StringVar(&c.Cgroup.CPUSet, "cpuset", "", "the CPUs govmm may run on (cpuset.cpus: 0-1)")
	fs.StringVar(&c.Cgroup.MemSet, "memset", "", "the memory nodes govmm may use (cpuset.mems: 0)")
	fs.StringVar(&o.memory, "memory", "", "the memory limit (K, M, G); it must hold the guest's RAM and govmm's own; default: none")
	fs.IntVar(&c.Cgroup.Pids, "pids", 0, "the most tasks, threads included (govmm needs about 10 plus one per vCPU); 0: no limit")
	fs.Uint64Var(&c.NoFile, "nofile", 1024, "the open-file limit (RLIMIT_NOFILE)")
	fs.StringVar(&o.fsize, "fsize", "", "the largest file govmm may write (RLIMIT_FSIZE; K, M, G); default: no limit")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print the jail's layout, and its cgroup's usage at the end")
	fs.BoolVarP(&o.help, "help", "h", false, "print this help")
	fs.Usage = func() {
		fmt.Fprint(stderr, jailUsage)
		fs.PrintDefaults()
	}
	dash := -1
	for i, a := range args {
		if a == "--" {
			dash = i
			break
		}
	}
	jailArgs, vmmArgs := args, []string(nil)
	if dash >= 0 {
		jailArgs, vmmArgs = args[:dash], args[dash+1:]
	}
	if err := fs.Parse(longDashes(fs, jailArgs)); err != nil {
		if err == pflag.ErrHelp {
			return &jailOptions{help: true}, nil, nil
		}
		return nil, nil, fmt.Errorf("jail: %w (run govmm jail -h for the flags)", err)
	}
	if o.help {
		fs.Usage()
		return o, nil, nil
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("jail: unexpected argument %q: govmm's flags go after --", fs.Arg(0))
	}
	if dash < 0 {
		return nil, nil, fmt.Errorf("jail: no -- and govmm flags after it: give them as in govmm jail -uid UID -gid GID -- -kernel FILE")
	}
	var err error
	switch o.version {
	case "auto":
	case "1", "2":
		c.Cgroup.Version, _ = strconv.Atoi(o.version)
	default:
		return nil, nil, fmt.Errorf("jail: -cgroup-version %q: give auto, 1 or 2", o.version)
	}
	if o.memory != "" {
		if c.Cgroup.Memory, err = parseBytes(o.memory); err != nil {
			return nil, nil, fmt.Errorf("jail: -memory: %w", err)
		}
	}
	if o.fsize != "" {
		if c.FileSize, err = parseBytes(o.fsize); err != nil {
			return nil, nil, fmt.Errorf("jail: -fsize: %w", err)
		}
	}
	c.Verbose = o.verbose
	return o, vmmArgs, nil
}

// parseBytes reads a size where a bare number is bytes.
func parseBytes(s string) (uint64, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	return parseSize(s)
}

// jailOverhead is what govmm needs besides its guest's RAM and the
// files it reads: the Go runtime, the VMM's structures and the vCPUs'
// pages (make bench measures about 5 MiB), with room to spare.
const jailOverhead = 24 << 20

// runJail is govmm jail.
func runJail(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	o, vmmArgs, err := parseJailFlags(args, stderr)
	if err != nil {
		return 2, err
	}
	if o.help {
		return 0, nil
	}
	c := &o.cfg
	if err := jailFiles(c, vmmArgs); err != nil {
		return 2, err
	}
	if c.Program, err = os.Executable(); err != nil {
		return 1, fmt.Errorf("jail: finding govmm's own binary: %w", err)
	}
	if c.Dir, err = os.Getwd(); err != nil {
		return 1, fmt.Errorf("jail: %w", err)
	}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "GOVMM_") {
			c.Env = append(c.Env, e)
		}
	}
	c.Stdin, c.Stdout, c.Stderr, c.Log = stdin, stdout, stderr, stderr
	return jail.Run(ctx, *c)
}

// jailFiles reads govmm's flags for the files and devices the jail must
// hold, checks the memory limit against the guest's RAM, and turns the
// kernel cache off (the jail's root is read-only).
func jailFiles(c *jail.Config, vmmArgs []string) error {
	if len(vmmArgs) > 0 && vmmArgs[0] == jailProbeArg {
		c.Args = vmmArgs
		return nil
	}
	if len(vmmArgs) > 0 && vmmArgs[0] == "exec" {
		return fmt.Errorf("jail: govmm exec does not run in a jail yet: give govmm's own flags after --")
	}
	o, err := parseFlags(vmmArgs, io.Discard)
	if err != nil {
		return fmt.Errorf("jail: govmm's flags after --: %w", err)
	}
	if o.help || o.confine.printSeccomp {
		return fmt.Errorf("jail: give govmm flags that run a VM after --")
	}
	for _, p := range []string{o.kernel, o.initrd} {
		if p == "" {
			continue
		}
		abs, err := absPath(p)
		if err != nil {
			return err
		}
		c.ReadOnly = append(c.ReadOnly, abs)
	}
	if path, ok := strings.CutPrefix(o.serial, "file:"); ok {
		abs, err := absPath(path)
		if err != nil && !os.IsNotExist(errors.Unwrap(err)) {
			return err
		}
		c.Writable = append(c.Writable, abs)
	}
	kvmPath, err := absPath(o.kvmPath)
	if err != nil {
		return err
	}
	c.Devices = append(c.Devices, kvmPath)
	if c.TAP != "" {
		c.Devices = append(c.Devices, "/dev/net/tun")
	}
	if m := c.Cgroup.Memory; m > 0 {
		need := o.mem + jailOverhead
		for _, p := range c.ReadOnly {
			if fi, err := os.Stat(p); err == nil {
				need += uint64(fi.Size())
			}
		}
		if m < need {
			return fmt.Errorf("jail: -memory %d MiB is less than the guest's RAM (-mem %d MiB) plus govmm's own memory and files (%d MiB): give -memory %dM or more, or a smaller -mem", m>>20, o.mem>>20, (need-o.mem)>>20, (need+(1<<20)-1)>>20)
		}
	}
	c.Args = append(append([]string{}, vmmArgs...), "--cache=")
	return nil
}

// absPath makes p absolute (the jail mirrors the host's paths) and
// checks that it exists.
func absPath(p string) (string, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("jail: %w", err)
	}
	if _, err := os.Stat(p); err != nil {
		return p, fmt.Errorf("jail: %w", err)
	}
	return p, nil
}
