package sandbox

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"
)

//go:generate go run gensysnames.go

// Mode says what the seccomp filter does with a call not on the
// allow-list.
type Mode int

const (
	// SeccompOn denies it: govmm prints one line naming the call and its
	// first arguments on stderr and dies by SIGSYS.
	SeccompOn Mode = iota + 1
	// SeccompOff installs no filter.
	SeccompOff
	// SeccompLog lets it through and has the kernel log it (dmesg:
	// "audit: type=1326 ... syscall=N"): for finding what a new feature
	// needs before adding it to the allow-list.
	SeccompLog
)

// ParseMode reads the -seccomp flag's words.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "on":
		return SeccompOn, nil
	case "off":
		return SeccompOff, nil
	case "log":
		return SeccompLog, nil
	}
	return 0, fmt.Errorf("seccomp mode %q: give on, off or log", s)
}

func (m Mode) String() string {
	switch m {
	case SeccompOn:
		return "on"
	case SeccompOff:
		return "off"
	case SeccompLog:
		return "log"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ExitDenied is the status a shell shows for a VMM the filter killed:
// 128 + SIGSYS.
const ExitDenied = 128 + int(unix.SIGSYS)

// DeniedPrefix starts the line govmm prints for a denied call.
const DeniedPrefix = "govmm: seccomp: denied system call "

func (o Op) String() string {
	switch o {
	case Equal:
		return "=="
	case NotEqual:
		return "!="
	case BitsSet:
		return "has bits"
	case BitsClear:
		return "lacks bits"
	}
	return "?"
}

// Install loads the filter on every thread of the process (TSYNC) and
// sets no_new_privs, which an unprivileged process needs for it. It cannot
// be undone. Call it once the VM is set up, before the guest runs: from
// then on only the calls on the allow-list work. With SeccompOn a denied
// call is reported by a SIGSYS handler (sigsys_amd64.s): one line on
// stderr, DeniedPrefix and the call's name, number and first three
// arguments, then the process dies by SIGSYS (status ExitDenied in a
// shell).
//
// Why SECCOMP_RET_TRAP and not SECCOMP_RET_KILL_PROCESS: both end the
// VMM and neither runs the call, but KILL_PROCESS says which call only in
// the kernel's audit log (dmesg, type=1326), which a jailed or
// unprivileged user often cannot read; the trap lets the process say it
// itself. The handler is assembly that never returns to Go, and
// rt_sigaction of SIGSYS is off the allow-list, so the report cannot be
// replaced; a process that could run code of its own could only stop
// reporting, never make the call.
//
// extra rules join the allow-list (UserNetworkRules, for a guest with
// user-mode networking).
func Install(mode Mode, extra ...Rule) error {
	var action Action
	if err := needStatic(mode, linksLibc()); err != nil {
		return err
	}
	switch mode {
	case SeccompOff:
		return nil
	case SeccompOn:
		action = ActionTrap
		if err := installSIGSYSHandler(); err != nil {
			return err
		}
	case SeccompLog:
		action = ActionLog
	default:
		return fmt.Errorf("seccomp: unknown mode %v", mode)
	}
	prog, err := Program(append(Rules(unix.Getpid()), extra...), action)
	if err != nil {
		return err
	}
	if err := loadFilter(prog); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("seccomp: this kernel cannot load the filter (%w): run with -seccomp off", err)
		}
		return fmt.Errorf("seccomp: %w (run with -seccomp off to go without the filter)", err)
	}
	return nil
}

// errLibc is Install's answer in a binary built with cgo, which runs its
// threads through glibc: glibc's allocator, once several threads allocate,
// opens /sys/devices/system/cpu/online and /proc/stat to size its arenas
// (seen with 8 vCPUs), which the filter forbids. govmm is meant to be a
// static binary anyway (the jail and testvm run it without a libc).
var errLibc = errors.New("seccomp: this govmm was built with cgo, whose C library opens files the filter forbids once several threads run: build it static with CGO_ENABLED=0 (make build does), or run with -seccomp off")

// needStatic refuses a filter in a binary built with cgo.
func needStatic(mode Mode, cgo bool) error {
	if mode != SeccompOff && cgo {
		return errLibc
	}
	return nil
}

// linksLibc reports whether this binary was built with cgo.
func linksLibc() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}

// Print writes the allow-list, one call a line with its allowed
// arguments and who needs it, then the size of the filter.
func Print(w io.Writer, pid int) error {
	rules := Rules(pid)
	fmt.Fprintf(w, "govmm's seccomp allow-list (x86_64), installed on every thread once the VM is set up.\n")
	fmt.Fprintf(w, "Any other call: one line on stderr naming it, then death by SIGSYS (status %d). -seccomp off: no filter; -seccomp log: allow and log to the kernel's audit log.\n\n", ExitDenied)
	for _, r := range rules {
		nr, ok := syscallNumber(r.Syscall)
		if !ok {
			return fmt.Errorf("seccomp: %q is not an x86_64 system call", r.Syscall)
		}
		why := r.Why
		if r.Errno != 0 {
			why = fmt.Sprintf("fails with %s: %s", unix.ErrnoName(r.Errno), why)
		}
		fmt.Fprintf(w, "%-16s %3d  %s\n", r.Syscall, nr, why)
		for _, c := range r.Cases {
			var conds []string
			for _, cd := range c.Conds {
				conds = append(conds, fmt.Sprintf("arg%d %v %#x", cd.Arg, cd.Op, cd.Value))
			}
			fmt.Fprintf(w, "%22s %-22s %s\n", "", c.Name, strings.Join(conds, " && "))
		}
	}
	fmt.Fprintf(w, "\nWith user-mode networking (-net user), also:\n")
	for _, r := range UserNetworkRules() {
		nr, _ := syscallNumber(r.Syscall)
		fmt.Fprintf(w, "%-16s %3d  %s\n", r.Syscall, nr, r.Why)
	}
	fmt.Fprintf(w, "\nWith the control API (-api), also:\n")
	for _, r := range MobilityRules() {
		nr, _ := syscallNumber(r.Syscall)
		fmt.Fprintf(w, "%-16s %3d  %s\n", r.Syscall, nr, r.Why)
		for _, c := range r.Cases {
			fmt.Fprintf(w, "%22s %s\n", "", c.Name)
		}
	}
	prog, err := Program(rules, ActionTrap)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "\n%d system calls, %d BPF instructions.\n", len(rules), len(prog))
	return err
}

// merge makes one rule of each system call that several rule sets allow
// (the base list, -net user's, -api's): allowed always if any allows it
// always, else in any of their cases. The first rule's place and errno
// stand.
func merge(rules []Rule) []Rule {
	at := map[string]int{}
	var out []Rule
	for _, r := range rules {
		i, ok := at[r.Syscall]
		if !ok {
			at[r.Syscall] = len(out)
			r.Cases = append([]Case(nil), r.Cases...)
			out = append(out, r)
			continue
		}
		o := &out[i]
		switch {
		case o.Errno != 0 || r.Errno != 0:
			// A call the base list fails on purpose stays failed.
		case len(o.Cases) == 0 || len(r.Cases) == 0:
			o.Cases = nil
		default:
			o.Cases = append(o.Cases, r.Cases...)
		}
	}
	return out
}
