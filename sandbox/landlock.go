package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Files are what the VMM may still open once Landlock confines it; every
// other path is refused (EACCES), and so are TCP binds and connects,
// abstract Unix sockets and signals to other processes.
type Files struct {
	Read      []string // files opened read-only (the host's /proc/cpuinfo)
	ReadWrite []string // files opened for reading and writing (/dev/kvm, with its ioctls)
	Dirs      []string // folders whose files are read, written, created and renamed (the kernel cache)
	// Network leaves TCP unconfined: user-mode networking (virtio-net
	// user) connects and listens for the guest.
	Network bool
	// Connect leaves outgoing TCP connections unconfined (binds stay
	// refused): a live migration connects to its destination, on a port
	// known only when it is asked for.
	Connect bool
}

// LandlockABI is the Landlock ABI version this kernel offers, 0 when it
// has none (too old, or Landlock not among its LSMs).
func LandlockABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Restrict confines the whole process, every thread, with Landlock to f,
// for good, with as much as the kernel's Landlock ABI can restrict (ABI 1
// covers file access; later ones add truncation, TCP, device ioctls and
// scopes). Paths that do not exist are left out. A kernel without
// Landlock restricts nothing when bestEffort is set, and is an error
// otherwise. It returns the ABI version used.
func Restrict(f Files, bestEffort bool) (int, error) {
	abi := LandlockABI()
	if abi == 0 {
		if bestEffort {
			return 0, nil
		}
		return 0, errors.New("landlock: this kernel has no Landlock (it needs Linux 5.13 or later with landlock in its lsm= list): run with -landlock auto or off")
	}
	cfg := landlock.V7.BestEffort()
	if f.Connect {
		cfg.HandledAccessNet &^= llsys.AccessNetConnectTCP
	}
	var rules []landlock.Rule
	if p := existing(f.Read); len(p) > 0 {
		rules = append(rules, landlock.ROFiles(p...))
	}
	if p := existing(f.ReadWrite); len(p) > 0 {
		rules = append(rules, landlock.RWFiles(p...).WithIoctlDev())
	}
	if p := existing(f.Dirs); len(p) > 0 {
		rules = append(rules, landlock.RWDirs(p...))
	}
	restrict := cfg.Restrict
	if f.Network {
		restrict = cfg.RestrictPaths // file access only: TCP stays open
	}
	if err := restrict(rules...); err != nil {
		return abi, fmt.Errorf("landlock (ABI %d): %w (run with -landlock off to go without it)", abi, err)
	}
	return abi, nil
}

// existing keeps the paths that exist, cleaned, without duplicates.
func existing(paths []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if p == "" {
			continue
		}
		p = filepath.Clean(p)
		if _, err := os.Stat(p); err != nil || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}
