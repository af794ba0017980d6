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
)

// initConfig is what the jailer sends the jail's init, as JSON.
type initConfig struct {
	Root, ID, Dir      string
	UID, GID           int
	Program            string
	Args, Env          []string
	ReadOnly, Writable []string
	Devices            []string
	NetNS              string // a namespace to join; "" for none
	NoFile, FileSize   uint64
	Verbose            bool
	ModuleDirs         []string // /sys/module entries govmm's host detection looks for
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
	cmd.ExtraFiles = []*os.File{cfgR, errW}
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
	}

	ic := initConfig{Root: root, ID: c.ID, Dir: c.Dir, UID: c.UID, GID: c.GID, Program: c.Program, Args: c.Args, Env: c.Env,
		ReadOnly: c.ReadOnly, Writable: c.Writable, Devices: c.Devices, NoFile: c.NoFile, FileSize: c.FileSize, Verbose: c.Verbose}
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
