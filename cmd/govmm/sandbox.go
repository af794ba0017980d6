package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/sandbox"
)

// confineOptions are the flags that confine the govmm process itself.
type confineOptions struct {
	seccompWord, landlockWord string
	seccomp                   sandbox.Mode
	landlock                  string // auto, on or off
	printSeccomp              bool   // -print-seccomp (govmm only)
	deniedCall                string // hidden -test-denied-call: make a call the filter denies once the guest runs
}

// addConfineFlags adds -seccomp and -landlock (govmm and govmm exec).
func addConfineFlags(fs *pflag.FlagSet, c *confineOptions) {
	fs.StringVar(&c.seccompWord, "seccomp", "on", "the seccomp filter installed once the VM is set up: on (a call off the allow-list prints one line naming it and kills govmm with SIGSYS; -print-seccomp lists it), log (allow such calls, the kernel logs them: dmesg, type=1326), off")
	fs.StringVar(&c.landlockWord, "landlock", "auto", "Landlock confines govmm's file access, before the VM is built, to /dev/kvm, the kernel cache and /proc/cpuinfo (the kernel, initrd and serial file are open by then): auto (where the kernel has Landlock), on (fail without it), off")
	fs.StringVar(&c.deniedCall, "test-denied-call", "", "for tests: once the guest runs, make a call the seccomp filter denies: execve, or open:PATH")
	if err := fs.MarkHidden("test-denied-call"); err != nil {
		panic(err) // the flag was added just above
	}
}

// apply checks the words of the confinement flags.
func (c *confineOptions) apply() error {
	var err error
	if c.seccomp, err = sandbox.ParseMode(c.seccompWord); err != nil {
		return fmt.Errorf("-seccomp: %w", err)
	}
	switch c.landlockWord {
	case "auto", "on", "off":
		c.landlock = c.landlockWord
	default:
		return fmt.Errorf("-landlock %q: give auto, on or off", c.landlockWord)
	}
	switch {
	case c.deniedCall == "", c.deniedCall == "execve", strings.HasPrefix(c.deniedCall, "open:"):
	default:
		return fmt.Errorf("-test-denied-call %q: give execve or open:PATH", c.deniedCall)
	}
	return nil
}

// errConfinedInTest is returned where a test binary would confine itself
// (see main_test.go): seccomp and Landlock cannot be undone, so a test
// that reaches them in process must run govmm as a child instead.
var errConfinedInTest error

// confineFiles applies Landlock, before the machine is built: from then
// on the process opens only the KVM device, the kernel cache, the host's
// /proc/cpuinfo and the terminal on stdin. The kernel, initrd and serial
// file must be open or read by then.
func confineFiles(o *options, stderr io.Writer) error {
	if o.confine.landlock == "off" {
		return nil
	}
	if errConfinedInTest != nil {
		return errConfinedInTest
	}
	dev := machine.DeviceAccessOf(o.devices) // disks, /dev/net/tun: opened by machine.New
	f := sandbox.Files{
		Read:      append([]string{"/proc/cpuinfo"}, dev.Read...),
		ReadWrite: append([]string{o.kvmPath}, dev.ReadWrite...),
		Network:   dev.Network,
		Dirs:      slices.Clone(o.mob.snapshotDirs), // snapshots through the control API
		Connect:   o.mob.api != "",                  // its migrations connect to their destination
	}
	if o.cacheDir != "" {
		// The fast path creates it; it must exist to be named in a rule.
		if err := os.MkdirAll(o.cacheDir, 0o700); err != nil {
			return fmt.Errorf("-cache: %w", err)
		}
		f.Dirs = append(f.Dirs, o.cacheDir)
	}
	// The console reopens its input through /proc/self/fd/0, which
	// Landlock checks as the file behind it.
	if in, err := os.Readlink("/proc/self/fd/0"); err == nil && filepath.IsAbs(in) {
		f.Read = append(f.Read, in)
	}
	abi, err := sandbox.Restrict(f, o.confine.landlock == "auto")
	if err != nil {
		return err
	}
	if o.verbose {
		if abi == 0 {
			fmt.Fprintln(stderr, "govmm: landlock: not offered by this kernel; file access is not confined")
		} else {
			fmt.Fprintf(stderr, "govmm: landlock (ABI %d): files confined to %s\n", abi, strings.Join(slices.Concat(f.ReadWrite, f.Dirs, f.Read), ", "))
		}
	}
	return nil
}

// confineCalls returns the machine's Confine hook: the seccomp filter,
// installed once the console is open and before the guest runs.
func confineCalls(o *options, stderr io.Writer) func() error {
	return func() error {
		if o.confine.seccomp == sandbox.SeccompOff {
			if o.confine.deniedCall != "" {
				go deniedCall(o.confine.deniedCall)
			}
			return nil
		}
		if errConfinedInTest != nil {
			return errConfinedInTest
		}
		var extra []sandbox.Rule
		if machine.DeviceAccessOf(o.devices).Network {
			extra = sandbox.UserNetworkRules()
		}
		if o.mob.api != "" {
			extra = append(extra, sandbox.MobilityRules()...)
		}
		if err := sandbox.Install(o.confine.seccomp, extra...); err != nil {
			return err
		}
		if o.verbose {
			fmt.Fprintf(stderr, "govmm: seccomp filter %v on every thread (govmm -print-seccomp lists the calls it allows)\n", o.confine.seccomp)
		}
		if o.confine.deniedCall != "" {
			go deniedCall(o.confine.deniedCall)
		}
		return nil
	}
}

// deniedCall makes the call -test-denied-call names. Under the filter it
// never returns: the SIGSYS handler reports it and the process dies.
// Without the filter it says what happened.
func deniedCall(what string) {
	var err error
	if path, ok := strings.CutPrefix(what, "open:"); ok {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			err = errors.Join(errors.New("opened"), f.Close())
		}
	} else {
		// execve(NULL): without the filter nothing runs (EFAULT). Not
		// syscall.Exec, which may call prlimit64 first.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, 0, 0, 0); errno != 0 {
			err = errno
		}
	}
	fmt.Fprintf(os.Stderr, "govmm: -test-denied-call %s returned: %v\n", what, err)
}

// printSeccomp is -print-seccomp.
func printSeccomp(stdout io.Writer) (int, error) {
	if err := sandbox.Print(stdout, os.Getpid()); err != nil {
		return 1, err
	}
	return 0, nil
}
