// Package jail runs govmm in a box of its own, as Firecracker's jailer
// does: new mount, PID, IPC and UTS namespaces (and a network namespace
// when asked), a fresh root holding only the VM's files, a cgroup with
// CPU, cpuset, memory and pids limits, another uid and gid, no
// capabilities, no_new_privs and rlimits.
//
// Go cannot fork without exec, so the jail is built in two stages. Run,
// in the jailer, checks the configuration, makes the cgroup and starts
// the jailer's own binary again in new namespaces (clone flags through
// SysProcAttr). That child is the jail's PID 1: it waits until the jailer
// has put it in the cgroup (and moved the TAP device into its network
// namespace), then Init builds the root, pivots into it, drops every
// privilege and execs govmm in its own place, so govmm is PID 1. The
// jailer waits, reports the cgroup's usage, and removes the cgroup and
// the jail's folder.
package jail

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// Config describes one jail.
type Config struct {
	// ID names the jail: its folder under BaseDir, its cgroup and its
	// host name. Letters, digits, '-', '_' and '.'.
	ID string
	// BaseDir holds one folder per running jail, removed when it ends.
	BaseDir string
	// UID and GID the VMM runs as. Required: -1 means not given.
	UID, GID int
	// Program is the VMM binary, bind-mounted read-only at /govmm in the
	// jail, and Args its arguments (without argv[0]). Env is its whole
	// environment.
	Program string
	Args    []string
	Env     []string
	// ReadOnly files are bind-mounted read-only at their own paths (the
	// kernel, initrd, read-only disks). Writable files are made if
	// missing, given to UID and bind-mounted writable (a serial log file).
	// Devices are created at their own paths with the host's device
	// numbers, owned by UID and GID, mode 0600 (/dev/kvm, /dev/net/tun).
	ReadOnly, Writable, Devices []string
	// Dir is the VMM's working folder, made in the jail at the same path
	// so that relative paths in Args mean what they mean outside.
	Dir string
	// NetNS: "" shares the jailer's network namespace, "new" makes an
	// empty one, anything else is the path of one to join
	// (/var/run/netns/NAME). TAP, if set, is a TAP device moved into a
	// new namespace and moved back when the jail ends.
	NetNS, TAP string
	// Cgroup limits and where the cgroup goes.
	Cgroup CgroupConfig
	// Rlimits for the VMM: open files and the largest file it may write;
	// 0 leaves the jailer's.
	NoFile, FileSize uint64
	// Stdin, Stdout and Stderr are the VMM's (nil: /dev/null).
	Stdin          *os.File
	Stdout, Stderr io.Writer
	// Log receives the jailer's own lines: with Verbose, the jail's
	// layout and, at the end, the cgroup's usage.
	Log     io.Writer
	Verbose bool
}

// CgroupConfig are the cgroup's limits. Zero values set no limit.
type CgroupConfig struct {
	// Parent is the cgroup the jail's goes under in each hierarchy:
	// relative to the jailer's own cgroup (the default, ""), or from the
	// hierarchy's root when it starts with '/'.
	Parent string
	// Version picks cgroup v1 or v2: 0 chooses per controller, v1 where
	// a v1 hierarchy has it, otherwise v2.
	Version int
	// CPUs is the CPU quota in CPUs (0.5 is half a CPU), over a 100 ms
	// period.
	CPUs float64
	// CPUSet and MemSet are cpuset.cpus and cpuset.mems ("0-1", "0").
	CPUSet, MemSet string
	// Memory is the memory limit in bytes; swap is not allowed beyond it.
	Memory uint64
	// Pids is the most tasks (threads included) the jail may have.
	Pids int
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// validate checks c before anything is made, so that a bad flag leaves
// nothing behind.
func (c *Config) validate() error {
	if !idPattern.MatchString(c.ID) {
		return fmt.Errorf("jail: -id %q: give 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit", c.ID)
	}
	if c.UID < 0 {
		return fmt.Errorf("jail: no -uid: give the user ID govmm runs as in the jail (not 0 unless you mean it)")
	}
	if c.GID < 0 {
		return fmt.Errorf("jail: no -gid: give the group ID govmm runs as in the jail")
	}
	if !filepath.IsAbs(c.BaseDir) {
		return fmt.Errorf("jail: -base %q: give an absolute path", c.BaseDir)
	}
	switch {
	case c.NetNS == "", c.NetNS == "new":
	default:
		if _, err := os.Stat(c.NetNS); err != nil {
			return fmt.Errorf("jail: -netns: %w: give new, or the path of a network namespace (ip netns add NAME makes /var/run/netns/NAME)", err)
		}
	}
	if c.TAP != "" && c.NetNS != "new" {
		return fmt.Errorf("jail: -tap %s needs -netns new: the TAP device is moved into the jail's own network namespace", c.TAP)
	}
	for _, p := range append(append([]string{c.Program}, c.ReadOnly...), c.Devices...) {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("jail: %q is not an absolute path", p)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("jail: %w: the jail can only hold files that exist", err)
		}
	}
	for _, p := range c.Writable {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("jail: %q is not an absolute path", p)
		}
		if fi, err := os.Stat(filepath.Dir(p)); err != nil || !fi.IsDir() {
			return fmt.Errorf("jail: %s: its folder %s does not exist", p, filepath.Dir(p))
		}
	}
	for _, d := range c.Devices {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("jail: %w", err)
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("jail: %s is not a device", d)
		}
	}
	if c.Cgroup.CPUs < 0 {
		return fmt.Errorf("jail: -cpu-quota %v: give a positive number of CPUs", c.Cgroup.CPUs)
	}
	if c.Cgroup.Pids < 0 {
		return fmt.Errorf("jail: -pids %d: give a positive number", c.Cgroup.Pids)
	}
	if v := c.Cgroup.Version; v != 0 && v != 1 && v != 2 {
		return fmt.Errorf("jail: -cgroup-version %d: give 1, 2 or auto", v)
	}
	return nil
}
