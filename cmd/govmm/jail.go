package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/jail"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/snapshot"
	"github.com/govmm/govmm/virtio/net"
)

const jailUsage = `Usage: govmm jail -uid UID -gid GID [jail flags] -- [govmm flags]
       govmm jail -uid UID -gid GID [jail flags] -- exec [exec flags] -- CMD...

Runs govmm in a jail of its own: new mount, PID, IPC and UTS namespaces (and
a network namespace with -netns), a fresh read-only root holding only govmm
and what its flags name, at their own paths: the kernel and initrd and
-restore's folder (read-only), the serial file, -drive images (read-only
with readonly=on) and -snapshot-dir folders (writable), /dev/kvm and, for
-net tap, /dev/net/tun (device nodes owned by UID), and for -api PATH a
folder of its own at PATH's folder, where govmm makes the socket, linked
from PATH on the host so that govmm ctl -api PATH works from outside. Then
a cgroup with the limits below, UID and GID with no capabilities,
no_new_privs and rlimits. govmm is PID 1 in it, confines itself further
with Landlock and seccomp, and has no kernel cache (the fast path
decompresses in memory); its control API's metrics include the cgroup's
usage. Needs root, and a govmm built without cgo (CGO_ENABLED=0).

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
	fs.StringVar(&c.TAP, "tap", "", "a TAP device to move into the jail's new network namespace (-netns new) and bring up there, and move back when it ends; for -net tap,ifname=NAME it must belong to UID (ip tuntap add NAME mode tap user UID)")
	fs.StringVar(&c.Cgroup.Parent, "cgroup-parent", "", "the cgroup the jail's goes under: a path relative to the jailer's own cgroup (default: the jailer's own), or from the hierarchy's root if it starts with /")
	fs.StringVar(&o.version, "cgroup-version", "auto", "auto (each controller from a v1 hierarchy that has it, else v2), 1 or 2")
	fs.Float64Var(&c.Cgroup.CPUs, "cpu-quota", 0, "CPU time in CPUs (0.5: half of one) per 100 ms period; 0: no limit")
	fs.StringVar(&c.Cgroup.CPUSet, "cpuset", "", "the CPUs govmm may run on (cpuset.cpus: 0-1)")
	fs.StringVar(&c.Cgroup.MemSet, "memset", "", "the memory nodes govmm may use (cpuset.mems: 0)")
	fs.StringVar(&o.memory, "memory", "", "the memory limit (K, M, G); it must hold the guest's RAM and govmm's own; default: none")
	fs.IntVar(&c.Cgroup.Pids, "pids", 0, "the most tasks, threads included (govmm needs about 10 plus one per vCPU); 0: no limit")
	fs.Uint64Var(&c.NoFile, "nofile", 1024, "the open-file limit (RLIMIT_NOFILE)")
	fs.StringVar(&o.fsize, "fsize", "", "the largest file govmm may write (RLIMIT_FSIZE; K, M, G), disk images included; below -mem, guest RAM is anonymous memory rather than a memory file, which the limit would bound too; default: no limit")
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
	// A reader of the jailer's output that goes away (govmm jail ... |
	// head) must not kill it with SIGPIPE before it removes the jail: with
	// the signal asked for, a write to the closed pipe only fails.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	return jail.Run(ctx, *c)
}

// jailFiles reads govmm's flags for the files and devices the jail must
// hold, checks the memory limit against the guest's RAM, and turns the
// kernel cache off (the jail's root is read-only). It reads them with
// govmm's own flag parser, so that the jail holds what govmm will open.
func jailFiles(c *jail.Config, vmmArgs []string) error {
	if len(vmmArgs) > 0 && vmmArgs[0] == jailProbeArg {
		c.Args = vmmArgs
		return nil
	}
	if len(vmmArgs) > 0 && vmmArgs[0] == "exec" {
		return jailExecFiles(c, vmmArgs)
	}
	o, err := parseFlags(vmmArgs, io.Discard)
	if err != nil {
		return fmt.Errorf("jail: govmm's flags after --: %w", err)
	}
	if o.help || o.confine.printSeccomp || o.dumpACPI != "" {
		return fmt.Errorf("jail: give govmm flags that run a VM after --")
	}
	if err := jailVMFiles(c, o, o.kernel, o.initrd); err != nil {
		return err
	}
	c.Args = append(append([]string{}, vmmArgs...), "--cache=")
	return nil
}

// jailExecFiles is jailFiles for govmm exec: its kernel and initrd,
// named by images.env in the cache folder unless given, are passed to it
// as -kernel and -initrd, since the cache is not in the jail.
func jailExecFiles(c *jail.Config, vmmArgs []string) error {
	o, err := parseExecFlags(vmmArgs[1:], io.Discard)
	if err != nil {
		return fmt.Errorf("jail: govmm exec's flags after --: %w", err)
	}
	if o.help {
		return fmt.Errorf("jail: give govmm exec flags and a command after --")
	}
	// Before -kernel is filled in below: on a PVM host the default
	// kernel cannot run a command, which govmm exec says at once.
	if err := checkHost(o, detectHost(), io.Discard); err != nil {
		return fmt.Errorf("jail: govmm exec: %w", err)
	}
	kernel, initrd := o.kernel, o.initrd
	if kernel == "" || initrd == "" {
		g, err := imagesenv.Load(o.cacheDir)
		if err != nil {
			return fmt.Errorf("jail: govmm exec: %w (or give -kernel and -initrd)", err)
		}
		kernel, initrd = cmp.Or(kernel, g.Kernel), cmp.Or(initrd, g.Initrd)
	}
	if err := jailVMFiles(c, &o.options, kernel, initrd); err != nil {
		return err
	}
	// The kernel and initrd first (the user's own -kernel, given later,
	// wins and is this one); no cache last, before the command's --.
	args := append([]string{"exec", "--kernel=" + c.ReadOnly[0], "--initrd=" + c.ReadOnly[1]}, vmmArgs[1:]...)
	dash := slices.Index(args, "--")
	c.Args = slices.Insert(args, dash, "--cache=") // parseExecFlags found the --
	return nil
}

// jailVMFiles puts in c what a VM run with o opens: the kernel and
// initrd (the first two of c.ReadOnly when given), the serial file, the
// KVM device, disk images, /dev/net/tun for -net tap, the folders of
// -snapshot-dir and -restore and the -api socket.
func jailVMFiles(c *jail.Config, o *options, kernel, initrd string) error {
	for _, p := range []string{kernel, initrd} {
		if p == "" {
			continue
		}
		abs, err := absPath(p)
		if err != nil {
			return err
		}
		c.ReadOnly = append(c.ReadOnly, abs)
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
	if path, ok := strings.CutPrefix(o.serial, "file:"); ok {
		abs, err := absPath(path)
		if err != nil && !os.IsNotExist(errors.Unwrap(err)) {
			return err
		}
		c.Writable = append(c.Writable, abs)
	}
	if t := o.inspect.traceFile; t != "" {
		abs, err := absPath(t)
		if err != nil && !os.IsNotExist(errors.Unwrap(err)) {
			return err
		}
		c.Writable = append(c.Writable, abs)
	}
	if strings.HasPrefix(o.inspect.gdb, "unix:") {
		return fmt.Errorf("jail: -gdb unix:PATH is not made reachable from the host: give -gdb tcp:HOST:PORT (with the host's network namespace), or run govmm outside the jail to debug its guest")
	}
	kvmPath, err := absPath(o.kvmPath)
	if err != nil {
		return err
	}
	c.Devices = append(c.Devices, kvmPath)
	devs := o.devices
	if o.mob.restore != "" {
		saved, err := jailRestore(c, o.mob.restore)
		if err != nil {
			return err
		}
		if len(devs) == 0 {
			devs = saved // adoptShape gives the restored guest its saved devices
		}
	}
	if err := jailDevices(c, devs); err != nil {
		return err
	}
	c.WritableDirs = append(c.WritableDirs, o.mob.snapshotDirs...) // absolute already
	if o.mob.api != "" {
		if c.APISocket, err = filepath.Abs(o.mob.api); err != nil {
			return fmt.Errorf("jail: -api: %w", err)
		}
	}
	return nil
}

// jailRestore adds the -restore folder, and the folders of the snapshots
// a diff snapshot stands on, read-only, and returns the saved guest's
// devices.
func jailRestore(c *jail.Config, dir string) ([]machine.Device, error) {
	var devs []machine.Device
	for depth := 0; depth <= 64; depth++ {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("jail: -restore: %w", err)
		}
		f, err := snapshot.ReadState(abs)
		if err != nil {
			return nil, fmt.Errorf("jail: -restore: %w", err)
		}
		if depth == 0 && f.Machine != nil {
			devs = f.Machine.Config.Devices
		}
		if !slices.Contains(c.ReadOnlyDirs, abs) {
			c.ReadOnlyDirs = append(c.ReadOnlyDirs, abs)
		}
		if f.Memory.Diff == nil {
			break
		}
		dir = f.Memory.Diff.Base
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(abs, dir)
		}
	}
	return devs, nil
}

// jailDevices adds what the virtio devices open: disk images (or block
// devices), /dev/net/tun for -net tap, and /etc/resolv.conf for -net
// user (its DNS relay's name server); and checks that each TAP can be reached by the jail's user.
func jailDevices(c *jail.Config, devs []machine.Device) error {
	for _, d := range devs {
		a := machine.DeviceAccessOf([]machine.Device{d})
		if a.Network { // -net user: /etc/resolv.conf, where the host has one
			for _, p := range a.Read {
				if _, err := os.Stat(p); err == nil && !slices.Contains(c.ReadOnly, p) {
					c.ReadOnly = append(c.ReadOnly, p)
				}
			}
			continue
		}
		for i, p := range slices.Concat(a.Read, a.ReadWrite) {
			readOnly := i < len(a.Read)
			if p == net.TunDevice {
				if !slices.Contains(c.Devices, p) {
					c.Devices = append(c.Devices, p)
				}
				if err := jailTAP(c, string(d)); err != nil {
					return err
				}
				continue
			}
			abs, err := filepath.Abs(p)
			if err != nil {
				return fmt.Errorf("jail: -drive: %w", err)
			}
			fi, err := os.Stat(abs)
			if err != nil {
				return fmt.Errorf("jail: -drive file=%s: %w: give an existing disk image (truncate -s 64M FILE makes an empty one)", p, errors.Unwrap(err))
			}
			switch {
			case fi.Mode()&os.ModeDevice != 0 && readOnly:
				c.ReadOnlyDevices = append(c.ReadOnlyDevices, abs)
			case fi.Mode()&os.ModeDevice != 0:
				c.Devices = append(c.Devices, abs)
			case !fi.Mode().IsRegular():
				return fmt.Errorf("jail: -drive file=%s is neither a file nor a block device", p)
			case readOnly:
				c.ReadOnly = append(c.ReadOnly, abs)
			default:
				c.ReadWrite = append(c.ReadWrite, abs)
			}
		}
	}
	return nil
}

// jailTAP checks a -net tap device word against the jail: with a new
// network namespace the TAP must be the one -tap moves in, and govmm,
// with no capabilities, can attach only to a TAP its user owns.
func jailTAP(c *jail.Config, word string) error {
	name := ""
	for _, f := range strings.Split(word, ",") {
		if n, ok := strings.CutPrefix(f, "tap="); ok {
			name = n
		}
	}
	if c.NetNS == "new" && name != c.TAP {
		return fmt.Errorf("jail: -net tap,ifname=%s with -netns new: give -tap %s too, which moves it into the jail's namespace (make it first: ip tuntap add %s mode tap user %d)", name, name, name, c.UID)
	}
	if c.NetNS != "" && c.NetNS != "new" {
		return nil // in a namespace the jailer does not look into
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/net", name, "owner"))
	if err != nil {
		return fmt.Errorf("jail: -net tap,ifname=%s: no such TAP device: govmm, with no capabilities in the jail, cannot make one: make it first with ip tuntap add %s mode tap user %d", name, name, c.UID)
	}
	owner, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	g, _ := os.ReadFile(filepath.Join("/sys/class/net", name, "group"))
	group, _ := strconv.Atoi(strings.TrimSpace(string(g)))
	if owner != c.UID && group != c.GID {
		return fmt.Errorf("jail: TAP %s belongs to uid %d (group %d), and govmm in the jail runs as uid %d with no capabilities, so it cannot attach to it: make it with ip tuntap add %s mode tap user %d", name, owner, group, c.UID, name, c.UID)
	}
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
