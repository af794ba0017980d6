// Command testvm-run runs a static program inside a testvm machine: a
// QEMU-TCG VM with an emulated AMD SVM CPU, where the kernel's kvm_amd
// gives a real /dev/kvm (nested KVM under software emulation). It lets
// govmm run guests on a host without /dev/kvm; `make run` uses it.
//
//	testvm-run [-mem SIZE] [-cpus N] [-cache DIR] [-file PATH]... [-copy-args] [--] PROGRAM [ARGS...]
//
// PROGRAM and every -file (a file or a directory, copied whole) are copied
// into the VM at their own absolute paths. With -copy-args, so is every
// host file or directory that ARGS name: an argument, the value after
// "-flag=", or a part of a comma-separated list, whole or after "key="
// ("-initrd my.cpio"); relative paths are resolved against the current
// directory, and those that leave it ("../x") are passed as absolute
// paths. /, /proc, /sys and /dev are never copied. The files of govmm's
// -drive arguments are not copied but given to the VM as disks, the host
// file itself behind each: "-drive file=disk.img" becomes "-drive
// file=/dev/vda" in the VM, so what the guest syncs is in disk.img. The program runs in the current directory when that holds one
// of the copied files, else in /.
//
// When standard input is a terminal the run is interactive: the program
// gets the VM's console (a terminal) as its standard input and output,
// joined to this terminal, and Ctrl-C and Ctrl-A reach the program, not
// QEMU. Otherwise (CI, a pipe, </dev/null) its standard input is
// /dev/null and its output (standard error merged into it) streams to
// standard output as it comes, with plain \n line ends. Either way
// testvm-run exits with the program's exit status, or 1 with a reason when
// the VM fails; a VM that shows no sign of life for 40 s is killed and
// reported with its registers (testvm's watchdog).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/govmm/govmm/testvm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rc, err := run(ctx, os.Args[1:], term.IsTerminal(int(os.Stdin.Fd())), os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testvm-run: %v\n", err)
		if rc <= 0 {
			rc = 1
		}
	}
	stop()
	os.Exit(rc)
}

// options are the parsed command line.
type options struct {
	mem      int64 // bytes; 0: testvm's default
	cpus     int   // 0: testvm's default
	cache    string
	files    []string
	copyArgs bool // copy the host files that argv[1:] names
	argv     []string
}

const usage = "usage: testvm-run [-mem SIZE] [-cpus N] [-cache DIR] [-file PATH]... [-copy-args] [--] PROGRAM [ARGS...]"

// parseArgs reads the command line; files and the program come back as
// absolute paths.
func parseArgs(args []string, errOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("testvm-run", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintln(errOut, usage)
		fs.PrintDefaults()
	}
	mem := fs.String("mem", "", fmt.Sprintf("the VM's RAM, like 4G or 2048M (a bare number is MiB); default %dM", testvm.DefaultMem>>20))
	fs.IntVar(&o.cpus, "cpus", 0, fmt.Sprintf("the VM's CPUs; default %d", testvm.DefaultCPUs))
	fs.StringVar(&o.cache, "cache", os.Getenv("GOVMM_CACHE"), "where the VM's kernel is cached (default $GOVMM_CACHE, else govmm-test-cache in the temporary folder)")
	fs.Func("file", "a file or directory the program needs, copied into the VM at the same path (repeatable)", func(p string) error {
		o.files = append(o.files, p)
		return nil
	})
	fs.BoolVar(&o.copyArgs, "copy-args", false, "also copy into the VM, at the same paths, the host files and directories that the program's arguments name (-initrd my.cpio, -drive file=disk.img,readonly=on)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.argv = fs.Args()
	if len(o.argv) == 0 {
		return o, fmt.Errorf("no program given\n%s", usage)
	}
	if *mem != "" {
		n, err := parseSize(*mem)
		if err != nil {
			return o, err
		}
		o.mem = n
	}
	if o.cpus < 0 {
		return o, fmt.Errorf("-cpus %d: give a positive number", o.cpus)
	}
	if o.cache == "" {
		o.cache = filepath.Join(os.TempDir(), "govmm-test-cache")
	}
	for i, p := range o.files {
		abs, err := filepath.Abs(p)
		if err != nil {
			return o, err
		}
		o.files[i] = abs
	}
	prog, err := filepath.Abs(o.argv[0])
	if err != nil {
		return o, err
	}
	o.argv[0] = prog
	return o, nil
}

// parseSize reads a size like 512M, 4G or 4096 (MiB).
func parseSize(s string) (int64, error) {
	num, shift := strings.ToUpper(strings.TrimSpace(s)), 20
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'K':
			num, shift = num[:n-1], 10
		case 'M':
			num = num[:n-1]
		case 'G':
			num, shift = num[:n-1], 30
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > 1<<(62-shift) {
		return 0, fmt.Errorf("-mem %q: write the size like 4G or 2048M", s)
	}
	return n << shift, nil
}

// workDir is where the program runs: wd when the VM has it (it holds one
// of files, which keep their paths there), else "/".
func workDir(wd string, files []string) string {
	for _, f := range files {
		if under(f, wd) {
			return wd
		}
	}
	return "/"
}

// run runs the program that args name in the VM, interactively when
// standard input is a terminal.
func run(ctx context.Context, args []string, stdinTerminal bool, stdout, stderr io.Writer) (int, error) {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	if err := testvm.CheckStatic(o.argv[0]); err != nil {
		return 1, err
	}
	var log bytes.Buffer
	c, err := testvm.Find(ctx, o.cache, &log)
	if err != nil {
		return 1, fmt.Errorf("%w\n%s", err, log.String())
	}
	wd, err := os.Getwd()
	if err != nil {
		return 1, fmt.Errorf("the current directory: %w", err)
	}
	c.Files = append([]string{o.argv[0]}, o.files...)
	c.Argv = o.argv
	if o.copyArgs {
		argv, drives := passDrives(o.argv, wd)
		c.Drives = drives
		if len(drives) > 0 {
			fmt.Fprintf(stderr, "testvm-run: -copy-args: giving the VM these files as disks, not copies: %s\n", describeDrives(drives))
		}
		a := argFiles{wd: wd, stat: os.Stat}
		c.Argv = append(c.Argv[:1:1], a.scan(argv[1:])...)
		c.Files = append(c.Files, a.files...)
		if len(a.files) > 0 {
			fmt.Fprintf(stderr, "testvm-run: -copy-args: copying into the VM: %s\n", strings.Join(a.files, " "))
		}
	}
	c.Dir = workDir(wd, c.Files)
	c.Mem, c.CPUs = o.mem, o.cpus
	c.Interactive = stdinTerminal
	if c.Interactive {
		if t := os.Getenv("TERM"); t != "" {
			c.Env = []string{"TERM=" + t}
		}
	} else {
		c.Stdout = stdout
	}
	c.QuietKernel = true
	fmt.Fprintf(stderr, "testvm-run: %s runs inside an emulated AMD SVM machine (QEMU TCG) with nested KVM, slower than native\n", filepath.Base(o.argv[0]))
	return testvm.Run(ctx, c)
}
