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
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
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
	// ReadWrite files are bind-mounted writable as they are, neither made
	// nor given away (disk images): UID and GID must be able to write
	// them. ReadOnlyDevices are made as Devices are, mode 0400 (a disk
	// that is a block device, readonly=on).
	ReadWrite, ReadOnlyDevices []string
	// ReadOnlyDirs and WritableDirs are folders bind-mounted at their own
	// paths (-restore's; -snapshot-dir's). A writable one that is missing
	// is made, owned by UID and GID, and removed at the end if still
	// empty; one that exists must be writable by them.
	ReadOnlyDirs, WritableDirs []string
	// APISocket is the path of the VMM's control socket (-api). The jail
	// gets an empty folder of its own, BaseDir/ID/api, owned by UID, at
	// the socket's folder, where the VMM makes the socket; on the host the
	// jailer puts a symbolic link at APISocket to it, so that clients
	// outside reach the socket at the same path. Both go when it ends.
	APISocket string
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

var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`) })

// validate checks c before anything is made, so that a bad flag leaves
// nothing behind.
func (c *Config) validate() error {
	if !idPattern().MatchString(c.ID) {
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
	for _, p := range slices.Concat([]string{c.Program}, c.ReadOnly, c.ReadWrite, c.ReadOnlyDirs, c.Devices, c.ReadOnlyDevices) {
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
	for _, d := range slices.Concat(c.Devices, c.ReadOnlyDevices) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("jail: %w", err)
		}
		if fi.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("jail: %s is not a device", d)
		}
	}
	if err := checkStatic(c.Program); err != nil {
		return err
	}
	if err := c.checkAccess(); err != nil {
		return err
	}
	if err := c.checkPlaces(); err != nil {
		return err
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

// checkAccess checks that UID and GID, with no capabilities and no
// supplementary groups, can use what they are given: read the read-only
// files and folders, write the disk images and the snapshot folders that
// exist. Run as root the jailer could open anything, so without this a
// file only root may read fails later, in the VMM, in other words.
func (c *Config) checkAccess() error {
	type need struct {
		paths []string
		bits  uint32 // of r=4, w=2, x=1
		what  string
	}
	for _, n := range []need{
		{c.ReadOnly, 4, "read"},
		{c.ReadWrite, 6, "read and write"},
		{c.ReadOnlyDirs, 5, "read"},
	} {
		for _, p := range n.paths {
			if err := c.canUse(p, n.bits, n.what); err != nil {
				return err
			}
		}
	}
	for _, p := range c.WritableDirs {
		if _, err := os.Stat(p); err != nil {
			if fi, perr := os.Stat(filepath.Dir(p)); perr != nil || !fi.IsDir() {
				return fmt.Errorf("jail: %s: its folder %s does not exist: make it, or give another folder", p, filepath.Dir(p))
			}
			continue // made for UID
		}
		if err := c.canUse(p, 7, "write in"); err != nil {
			return err
		}
	}
	return nil
}

// canUse says whether UID and GID have the permission bits on p, by its
// owner, group and mode (ACLs aside).
func (c *Config) canUse(p string, bits uint32, what string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return fmt.Errorf("jail: %w", &os.PathError{Op: "stat", Path: p, Err: err})
	}
	mode := st.Mode & 0o777
	have := mode & 7
	switch {
	case int(st.Uid) == c.UID:
		have = mode >> 6
	case int(st.Gid) == c.GID:
		have = mode >> 3 & 7
	}
	if have&bits == bits {
		return nil
	}
	fix := fmt.Sprintf("chown %d %s", c.UID, p)
	if bits&2 == 0 {
		fix += fmt.Sprintf(", or chmod o+r%s %s", map[bool]string{true: "x", false: ""}[bits&1 != 0], p)
	}
	return fmt.Errorf("jail: uid %d gid %d cannot %s %s (owner %d:%d, mode %04o), and govmm has no capabilities in the jail: %s", c.UID, c.GID, what, p, st.Uid, st.Gid, mode, fix)
}

// checkPlaces refuses layouts the root cannot be built from: folders
// bound over / or holding the devices (a device node must be made in the
// jail's own root, never in a host folder), and an -api socket whose
// folder is one of those or that exists on the host.
func (c *Config) checkPlaces() error {
	dirs := slices.Concat(c.ReadOnlyDirs, c.WritableDirs)
	what := map[string]string{}
	for _, d := range c.ReadOnlyDirs {
		what[d] = "-restore " + d
	}
	for _, d := range c.WritableDirs {
		what[d] = "-snapshot-dir " + d
	}
	if c.APISocket != "" {
		if !filepath.IsAbs(c.APISocket) {
			return fmt.Errorf("jail: -api %q is not an absolute path", c.APISocket)
		}
		d := filepath.Dir(c.APISocket)
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("jail: -api %s: its folder %s does not exist: make it, or give another path", c.APISocket, d)
		}
		if _, err := os.Lstat(c.APISocket); err == nil {
			return fmt.Errorf("jail: -api %s exists on the host (a jail that was killed leaves its link): remove it, or give another path", c.APISocket)
		}
		dirs = append(dirs, d)
		what[d] = "-api " + c.APISocket + "'s folder"
	}
	for _, d := range dirs {
		if d == "/" {
			return fmt.Errorf("jail: %s is /: the jail's root cannot be a host folder: give a folder of its own", what[d])
		}
		for _, p := range slices.Concat(c.Devices, c.ReadOnlyDevices, []string{"/proc", "/sys"}) {
			if p == d || strings.HasPrefix(p, d+"/") {
				return fmt.Errorf("jail: %s holds %s, which the jail makes itself: give a folder of its own", what[d], p)
			}
		}
	}
	return nil
}

// checkStatic refuses a program that needs a dynamic loader: the jail's
// root holds no /lib, so its exec would fail with a bare ENOENT. Go links
// statically unless cgo is on (a dependency that uses os/user or net
// turns it on when a C compiler is there).
func checkStatic(program string) error {
	f, err := elf.Open(program)
	if err != nil {
		return nil // not ELF: let exec say what it is
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("jail: %s is dynamically linked (built with cgo), and the jail holds no shared libraries: build it with CGO_ENABLED=0 go build ./cmd/govmm (make build does)", program)
		}
	}
	return nil
}
