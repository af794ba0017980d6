package jail

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Init is the jail's PID 1, in the namespaces Run made: it builds the
// root, pivots into it, drops every privilege and execs the VMM in its
// own place. It returns only on a failure, which it has reported to the
// jailer; main should exit with the status it returns.
func Init() int {
	// Capabilities, the bounding set, no_new_privs and the namespace a
	// thread joins are per thread: everything happens on this one, which
	// then execs.
	runtime.LockOSThread()
	report := os.NewFile(initErrorFD, "the jailer's error pipe")
	if report == nil {
		fmt.Fprintln(os.Stderr, "govmm "+InitArg+": this is the jail's init, which only govmm jail starts")
		return 1
	}
	unix.CloseOnExec(initErrorFD)
	if err := initJail(); err != nil {
		if _, werr := fmt.Fprint(report, err.Error()); werr != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	return 1 // not reached: initJail execs
}

func initJail() error {
	f := os.NewFile(initConfigFD, "the jail's configuration")
	var c initConfig
	if err := json.NewDecoder(f).Decode(&c); err != nil {
		return fmt.Errorf("jail: reading the configuration: %w", err)
	}
	f.Close()
	if c.NetNS != "" {
		ns, err := unix.Open(c.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("jail: -netns %s: %w", c.NetNS, err)
		}
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("jail: joining network namespace %s: %w", c.NetNS, err)
		}
		unix.Close(ns)
	}
	if err := buildRoot(&c); err != nil {
		return err
	}
	if err := enterRoot(c.Root); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(c.ID)); err != nil {
		return fmt.Errorf("jail: host name: %w", err)
	}
	dir := c.Dir
	if dir == "" {
		dir = "/"
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("jail: working folder %s: %w", dir, err)
	}
	if err := setRlimits(&c); err != nil {
		return err
	}
	if err := dropPrivileges(c.UID, c.GID); err != nil {
		return err
	}
	argv := append([]string{"govmm"}, c.Args...)
	env := slices.DeleteFunc(slices.Clone(c.Env), func(e string) bool { return strings.HasPrefix(e, CountersEnv+"=") })
	if c.Counters != "" {
		env = append(env, countersEnv(c.Counters, initCountersFD))
	}
	if err := unix.Exec(vmmPath, argv, env); err != nil {
		return fmt.Errorf("jail: exec %s in the jail: %w", c.Program, err)
	}
	return nil
}

// vmmPath is where the VMM binary is in the jail.
const vmmPath = "/govmm"

// buildRoot mounts a tmpfs at c.Root, in this mount namespace only, and
// puts in it what the VMM needs: its binary, its files bind-mounted at
// their own paths, its devices, a /proc of this PID namespace and the
// working folder.
func buildRoot(c *initConfig) error {
	// Nothing from here on may reach the host's mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("jail: making the mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", c.Root, "tmpfs", unix.MS_NOSUID, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("jail: mounting the root: %w", err)
	}
	in := func(p string) string { return filepath.Join(c.Root, p) }
	for _, b := range binds(c) {
		if err := b.mount(in(b.dst)); err != nil {
			return err
		}
	}
	for _, d := range c.Devices {
		if err := makeDevice(d, in(d), c.UID, c.GID, 0o600); err != nil {
			return err
		}
	}
	for _, d := range c.ReadOnlyDevices {
		if err := makeDevice(d, in(d), c.UID, c.GID, 0o400); err != nil {
			return err
		}
	}
	// govmm's host detection looks for these module folders; empty ones
	// say the same and show nothing of the host's.
	for _, m := range c.ModuleDirs {
		if err := os.MkdirAll(in(m), 0o555); err != nil {
			return fmt.Errorf("jail: %w", err)
		}
	}
	if err := os.MkdirAll(in("/proc"), 0o555); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	if err := unix.Mount("proc", in("/proc"), "proc", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("jail: mounting /proc: %w", err)
	}
	if c.Dir != "" {
		if err := os.MkdirAll(in(c.Dir), 0o755); err != nil {
			return fmt.Errorf("jail: %w", err)
		}
	}
	return nil
}

// bind is one bind mount of the jail's root.
type bind struct {
	src, dst string
	dir      bool
	flags    uintptr
}

func (b bind) mount(dst string) error {
	if b.dir {
		return bindDir(b.src, dst, b.flags)
	}
	return bindFile(b.src, dst, b.flags)
}

// binds lists the root's bind mounts, in the order to make them: a
// folder before what lies under it (a -snapshot-dir holding the -restore
// folder, the -api socket's folder holding the kernel), so that the
// nearer mount wins.
func binds(c *initConfig) []bind {
	const ro = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	const rw = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	bs := []bind{{src: c.Program, dst: vmmPath, flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV}}
	if c.APIDir != "" {
		bs = append(bs, bind{src: c.APIDir, dst: c.APIMount, dir: true, flags: rw})
	}
	for _, p := range c.ReadOnly {
		bs = append(bs, bind{src: p, dst: p, flags: ro})
	}
	for _, p := range slices.Concat(c.Writable, c.ReadWrite) {
		bs = append(bs, bind{src: p, dst: p, flags: rw})
	}
	for _, p := range c.ReadOnlyDirs {
		bs = append(bs, bind{src: p, dst: p, dir: true, flags: ro})
	}
	for _, p := range c.WritableDirs {
		bs = append(bs, bind{src: p, dst: p, dir: true, flags: rw})
	}
	depth := func(p string) int { return strings.Count(filepath.Clean(p), "/") }
	slices.SortStableFunc(bs, func(a, b bind) int { return depth(a.dst) - depth(b.dst) })
	return bs
}

// bindDir bind-mounts folder src at dst (not what is mounted below src)
// with flags.
func bindDir(src, dst string, flags uintptr) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("jail: bind-mounting %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return fmt.Errorf("jail: remounting %s: %w", src, err)
	}
	return nil
}

// bindFile bind-mounts file src at dst with flags (MS_RDONLY, MS_NOSUID,
// ...), which a bind mount takes only on a remount.
func bindFile(src, dst string, flags uintptr) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
	if err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("jail: bind-mounting %s: %w", src, err)
	}
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return fmt.Errorf("jail: remounting %s: %w", src, err)
	}
	return nil
}

// makeDevice makes a device node at dst with src's numbers, for uid and
// gid only. A node, not a bind mount: it can be given to the jail's user
// without changing the host's.
func makeDevice(src, dst string, uid, gid int, perm uint32) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	if err := unix.Mknod(dst, st.Mode&unix.S_IFMT|perm, int(st.Rdev)); err != nil {
		return fmt.Errorf("jail: making device %s: %w", src, err)
	}
	if err := unix.Chown(dst, uid, gid); err != nil {
		return fmt.Errorf("jail: giving device %s to uid %d: %w", src, uid, err)
	}
	return nil
}

// enterRoot makes root the process's root and leaves the old one behind:
// pivot_root, then a lazy unmount of the old root, which it stacked
// under the new one. pivot_root cannot move an initramfs (rootfs) root,
// as testvm's emulated machine has: there the root is moved over / and
// chrooted into, which holds because the VMM keeps no capability
// (CAP_SYS_CHROOT is what breaks out of a chroot). Either way the root is
// made read-only.
func enterRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	err := unix.PivotRoot(".", ".")
	switch {
	case err == nil:
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("jail: detaching the old root: %w", err)
		}
	case errors.Is(err, unix.EINVAL):
		if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("jail: moving the root over an initramfs: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("jail: chroot: %w", err)
		}
	default:
		return fmt.Errorf("jail: pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("jail: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("jail: making the root read-only: %w", err)
	}
	return nil
}

// setRlimits sets the VMM's open-file and file-size limits, and no core
// dumps (a VMM's core holds its guest's memory).
func setRlimits(c *initConfig) error {
	set := func(what string, res int, v uint64) error {
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("jail: %s limit %d: %w", what, v, err)
		}
		return nil
	}
	if c.NoFile > 0 {
		if err := set("open files (-nofile)", unix.RLIMIT_NOFILE, c.NoFile); err != nil {
			return err
		}
	}
	if c.FileSize > 0 {
		if err := set("file size (-fsize)", unix.RLIMIT_FSIZE, c.FileSize); err != nil {
			return err
		}
	}
	return set("core dump", unix.RLIMIT_CORE, 0)
}

// dropPrivileges drops the bounding set and ambient capabilities, becomes
// uid and gid with no supplementary groups, clears every capability left
// (a jail run as uid 0 keeps none either), and sets no_new_privs, so the
// exec'd VMM can never gain one.
func dropPrivileges(uid, gid int) error {
	for capNo := 0; ; capNo++ {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(capNo), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the last capability this kernel knows
		}
		if err != nil {
			return fmt.Errorf("jail: dropping capability %d from the bounding set: %w", capNo, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("jail: clearing ambient capabilities: %w", err)
	}
	if err := unix.Setgroups(nil); err != nil {
		return fmt.Errorf("jail: dropping supplementary groups: %w", err)
	}
	if err := unix.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("jail: -gid %d: %w", gid, err)
	}
	if err := unix.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("jail: -uid %d: %w", uid, err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("jail: clearing capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("jail: no_new_privs: %w", err)
	}
	// Changing uid cleared the parent-death signal; a VMM whose jailer
	// dies must die too.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("jail: parent-death signal: %w", err)
	}
	return nil
}
