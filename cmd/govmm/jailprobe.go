package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// jailProbeArg is the hidden subcommand the jail tests run in govmm's
// place (govmm jail ... -- jail-probe [flags]): it reports what the
// process sees, as JSON on stdout, from the very spot govmm would run.
const jailProbeArg = "jail-probe"

// jailProbe is what jail-probe reports.
type jailProbe struct {
	PID, UID, GID, EUID int
	Groups              []int
	Hostname            string
	Status              map[string]string // CapEff, CapBnd, CapPrm, NoNewPrivs from /proc/self/status
	Files               []string          // every path under / but /proc
	Interfaces          []string
	NetNS               string            // readlink /proc/self/ns/net
	Paths               map[string]string // each -path: "exists" or the error
	NoFile, FileSize    uint64
	Cgroup              string // /proc/self/cgroup
}

// runJailProbe is jail-probe. -path P (repeatable) says whether P can be
// seen; -alloc SIZE touches that much memory first (for the memory-limit
// test: a process over its cgroup's limit is OOM-killed).
func runJailProbe(args []string, stdout io.Writer) (int, error) {
	p := jailProbe{Paths: map[string]string{}, Status: map[string]string{}}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-path":
			if i+1 < len(args) {
				i++
				if _, err := os.Stat(args[i]); err != nil {
					p.Paths[args[i]] = err.Error()
				} else {
					p.Paths[args[i]] = "exists"
				}
			}
		case "-alloc":
			if i+1 < len(args) {
				i++
				n, err := parseSize(args[i])
				if err != nil {
					return 1, err
				}
				b := make([]byte, n)
				for j := 0; j < len(b); j += 4096 {
					b[j] = 1
				}
			}
		default:
			return 2, fmt.Errorf("%s: unknown argument %q: give -path PATH or -alloc SIZE", jailProbeArg, args[i])
		}
	}
	p.PID, p.UID, p.GID, p.EUID = os.Getpid(), os.Getuid(), os.Getgid(), os.Geteuid()
	p.Groups, _ = os.Getgroups()
	p.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs", "Seccomp":
				p.Status[k] = strings.TrimSpace(v)
			}
		}
	}
	_ = filepath.WalkDir("/", func(path string, d fs.DirEntry, err error) error {
		if path == "/proc" {
			return filepath.SkipDir
		}
		if err == nil {
			p.Files = append(p.Files, path)
		}
		return nil
	})
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			p.Interfaces = append(p.Interfaces, i.Name)
		}
	}
	p.NetNS, _ = os.Readlink("/proc/self/ns/net")
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		p.NoFile = rl.Cur
	}
	if unix.Getrlimit(unix.RLIMIT_FSIZE, &rl) == nil {
		p.FileSize = rl.Cur
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		p.Cgroup = strings.TrimSpace(string(b))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(p); err != nil {
		return 1, err
	}
	return 0, nil
}
