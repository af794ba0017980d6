package jail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg is the argument the jailer re-executes its own binary with to
// become the jail's PID 1 (see Init). The binary's main must call Init
// when it sees it.
const InitArg = "jail-init"

// The descriptors the jail's init gets: the configuration to read, and a
// pipe to report a failure before exec (it closes on exec).
const (
	initConfigFD = 3
	initErrorFD  = 4
	// initCountersFD is the first of the cgroup's counter files, which
	// the VMM inherits (see CountersEnv).
	initCountersFD = 5
)

// initConfig is what the jailer sends the jail's init, as JSON.
type initConfig struct {
	Root, ID, Dir      string
	UID, GID           int
	Program            string
	Args, Env          []string
	ReadOnly, Writable []string
	ReadWrite          []string
	ReadOnlyDirs       []string
	WritableDirs       []string
	Devices            []string
	ReadOnlyDevices    []string
	// APIDir is the jail's own folder for the control socket, on the
	// host, mounted at APIMount in the jail.
	APIDir, APIMount string
	// Counters name the cgroup's counter files the VMM inherits (see
	// CountersEnv): "memory@1/memory.usage_in_bytes=5 ...".
	Counters         string
	NetNS            string // a namespace to join; "" for none
	NoFile, FileSize uint64
	Verbose          bool
	ModuleDirs       []string // /sys/module entries govmm's host detection looks for
}

// Run builds the jail, runs the VMM in it until it ends and removes the
// jail. It returns the VMM's exit status (128+n when signal n killed
// it, as a shell says) and an error when the jail could not be built or
// the VMM was killed by the OOM killer or the seccomp filter. When ctx
// ends the VMM gets SIGTERM.
func Run(ctx context.Context, c Config) (status int, err error) {
	if err := c.validate(); err != nil {
		return 1, err
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			if cerr := cleanups[i](); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()

	g, err := newCgroup(c.ID, c.Cgroup)
	if err != nil {
		return 1, err
	}
	cleanups = append(cleanups, g.remove)

	root, undo, err := makeJailDir(c.BaseDir, c.ID)
	if err != nil {
		return 1, err // makeJailDir removed what it made
	}
	cleanups = append(cleanups, undo)
	for _, w := range c.Writable {
		f, err := os.OpenFile(w, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return 1, fmt.Errorf("jail: %w", err)
		}
		f.Close()
		if err := os.Chown(w, c.UID, c.GID); err != nil {
			return 1, fmt.Errorf("jail: giving %s to uid %d: %w", w, c.UID, err)
		}
	}

	for _, d := range c.WritableDirs {
		undo, err := makeWritableDir(d, c.UID, c.GID)
		if err != nil {
			return 1, err
		}
		if undo != nil {
			cleanups = append(cleanups, undo)
		}
	}
	var apiDir string
	if c.APISocket != "" {
		var undo func() error
		apiDir, undo, err = makeAPIDir(filepath.Dir(root), c.APISocket, c.UID, c.GID)
		if err != nil {
			return 1, err
		}
		cleanups = append(cleanups, undo)
	}
	counters, counterFiles, err := g.openCounters()
	if err != nil {
		return 1, err
	}
	defer func() {
		for _, f := range counterFiles {
			f.Close()
		}
	}()

	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	defer cfgW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return 1, err
	}
	defer errR.Close()

	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if c.NetNS == "new" {
		flags |= unix.CLONE_NEWNET
	}
	cmd := exec.Command("/proc/self/exe", InitArg)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.ExtraFiles = append([]*os.File{cfgR, errW}, counterFiles...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	cfgR.Close()
	errW.Close()
	if err != nil {
		return 1, fmt.Errorf("jail: starting the jail's init: %w", err)
	}
	pid := cmd.Process.Pid
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill() // a jail that failed to start: the init is only waiting for us
			_ = cmd.Wait()
		}
	}()
	if err := g.add(pid); err != nil {
		return 1, err
	}
	if c.TAP != "" {
		back, err := moveTAP(c.TAP, pid)
		if err != nil {
			return 1, err
		}
		cleanups = append(cleanups, back)
	}
	if c.Verbose {
		fmt.Fprintf(c.Log, "govmm jail: %s: root %s, cgroup %v, pid %d outside\n", c.ID, root, g.Paths(), pid)
		fmt.Fprintf(c.Log, "govmm jail: %s: holds %s\n", c.ID, c.layout(apiDir))
	}

	ic := initConfig{Root: root, ID: c.ID, Dir: c.Dir, UID: c.UID, GID: c.GID, Program: c.Program, Args: c.Args, Env: c.Env,
		ReadOnly: c.ReadOnly, Writable: c.Writable, ReadWrite: c.ReadWrite, ReadOnlyDirs: c.ReadOnlyDirs, WritableDirs: c.WritableDirs,
		Devices: c.Devices, ReadOnlyDevices: c.ReadOnlyDevices, Counters: counters,
		NoFile: c.NoFile, FileSize: c.FileSize, Verbose: c.Verbose}
	if apiDir != "" {
		ic.APIDir, ic.APIMount = apiDir, filepath.Dir(c.APISocket)
	}
	if c.NetNS != "new" {
		ic.NetNS = c.NetNS
	}
	for _, m := range []string{"kvm_intel", "kvm_amd", "kvm_pvm"} {
		if _, err := os.Stat(filepath.Join("/sys/module", m)); err == nil {
			ic.ModuleDirs = append(ic.ModuleDirs, filepath.Join("/sys/module", m))
		}
	}
	if err := json.NewEncoder(cfgW).Encode(ic); err != nil {
		return 1, fmt.Errorf("jail: sending the jail's init its configuration: %w", err)
	}
	cfgW.Close()
	msg, err := io.ReadAll(errR)
	if err != nil {
		return 1, fmt.Errorf("jail: reading the jail's init: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Signal(syscall.SIGTERM) })
	werr := cmd.Wait()
	stop()
	waited = true
	status = exitStatus(cmd.ProcessState)
	if len(msg) > 0 {
		return 1, errors.New(string(msg))
	}
	if werr != nil && cmd.ProcessState == nil {
		return 1, fmt.Errorf("jail: %w", werr)
	}
	u := g.usage()
	if c.Verbose {
		fmt.Fprintf(c.Log, "govmm jail: %s: cgroup usage: %v\n", c.ID, u)
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && u.OOMKills > 0:
		return status, fmt.Errorf("jail: the kernel's OOM killer killed the VMM in the jail's cgroup (memory peak %s of %s): raise -memory", mib(u.MemoryPeak), mib(u.MemoryLimit))
	case ws.Signaled() && ws.Signal() == syscall.SIGSYS:
		return status, errors.New("jail: the VMM made a system call its seccomp filter denies and was killed (SIGSYS); its line above names the call")
	case ws.Signaled():
		return status, fmt.Errorf("jail: the VMM was killed by %v", ws.Signal())
	}
	return status, nil
}

// exitStatus is the status a shell reports for a process.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// makeJailDir makes base/id/root, and base if it is missing, and
// returns the root and a function that removes them: base too once it is
// empty (the last jail to leave it removes it).
func makeJailDir(base, id string) (string, func() error, error) {
	var made []string // id's folder, then its root
	undo := func() error {
		var errs []error
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("jail: removing %s: %w", made[i], err))
			}
		}
		if err := unix.Rmdir(base); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("jail: removing %s: %w", base, err))
		}
		return errors.Join(errs...)
	}
	dir := filepath.Join(base, id)
	// Another jail may remove base between the two mkdirs: try again.
	for try := 0; ; try++ {
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", undo, fmt.Errorf("jail: -base: %w", err)
		}
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrNotExist) && try < 10 {
			continue
		}
		if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("%s exists: a jail with -id %s runs, or one was killed (remove the folder)", dir, id)
		}
		return "", undo, errors.Join(fmt.Errorf("jail: %w", err), undo())
	}
	made = append(made, dir)
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", undo, errors.Join(fmt.Errorf("jail: %w", err), undo())
	}
	made = append(made, root)
	return root, undo, nil
}

// makeWritableDir makes folder d for uid and gid when it is missing, and
// returns a function that removes it if it is still empty (nil when it
// was there).
func makeWritableDir(d string, uid, gid int) (func() error, error) {
	if _, err := os.Stat(d); err == nil {
		return nil, nil
	}
	if err := os.Mkdir(d, 0o700); err != nil {
		return nil, fmt.Errorf("jail: -snapshot-dir: %w", err)
	}
	undo := func() error {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("jail: removing %s: %w", d, err)
		}
		return nil
	}
	if err := os.Chown(d, uid, gid); err != nil {
		return nil, errors.Join(fmt.Errorf("jail: giving %s to uid %d: %w", d, uid, err), undo())
	}
	return undo, nil
}

// makeAPIDir makes the jail's folder for its control socket, jailDir/api,
// owned by uid and gid, and the host's link at socket to the socket the
// VMM will make in it. It returns the folder and a function that removes
// the link (if it is still the jail's) and the folder with what is in it.
func makeAPIDir(jailDir, socket string, uid, gid int) (string, func() error, error) {
	dir := filepath.Join(jailDir, "api")
	target := filepath.Join(dir, filepath.Base(socket))
	linked := false
	undo := func() error {
		var errs []error
		if linked {
			if t, err := os.Readlink(socket); err == nil && t == target {
				if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("jail: removing -api's link %s: %w", socket, err))
				}
			}
		}
		// The socket, and the mount points of files the jail binds under
		// the socket's folder, are all that can be in it.
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("jail: removing %s: %w", dir, err))
		}
		return errors.Join(errs...)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("jail: -api: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", nil, errors.Join(fmt.Errorf("jail: -api: giving %s to uid %d: %w", dir, uid, err), undo())
	}
	if err := os.Symlink(target, socket); err != nil {
		return "", nil, errors.Join(fmt.Errorf("jail: -api: %w: remove it, or give another path", err), undo())
	}
	linked = true
	return dir, undo, nil
}

// layout says what the jail's root holds, for -v.
func (c *Config) layout(apiDir string) string {
	var parts []string
	add := func(what string, ps []string) {
		if len(ps) > 0 {
			parts = append(parts, what+" "+strings.Join(ps, " "))
		}
	}
	add("read-only", slices.Concat(c.ReadOnly, c.ReadOnlyDirs))
	add("writable", slices.Concat(c.Writable, c.ReadWrite, c.WritableDirs))
	add("devices", slices.Concat(c.Devices, c.ReadOnlyDevices))
	if apiDir != "" {
		parts = append(parts, fmt.Sprintf("api %s at %s (linked from %s)", apiDir, filepath.Dir(c.APISocket), c.APISocket))
	}
	return strings.Join(parts, "; ")
}
