// Command bench measures govmm side by side with its peers on the project's
// test guest, in one run, and prints a table (`make bench`):
//
//	go run ./bench -govmm bin/govmm -cache .cache
//
// The peers are QEMU (-M microvm, booting guest.elf through PVH) and
// cvmm, a minimal C VMM compiled from bench/cvmm/cvmm.c at run time: the
// physical limit for exit round trips. Claims are ratios against a peer
// measured in the same run. On a host without /dev/kvm the govmm and cvmm
// rows run inside testvm's QEMU-TCG machine with nested SVM KVM.
package main

import (
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
)

// options are the command line.
type options struct {
	govmm, cache string
	runs, n      int
	memMiB       int
	// inner: run the govmm and cvmm rows here and print them as JSON (the
	// bench runs itself this way inside testvm's machine).
	inner       bool
	cvmm, guest string    // given to the inner run
	floor       floorBins // given to the inner run
	only        string    // comma-separated measurements to run; "" all
	verbose     bool      // print the start-up breakdown
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.govmm, "govmm", "bin/govmm", "the govmm binary to measure (make build)")
	fs.StringVar(&o.cache, "cache", ".cache", "cache folder: test guests, cvmm, testvm's kernel")
	fs.IntVar(&o.runs, "runs", 0, "runs of each VMM per measurement, median reported (0: 5, or 3 under testvm)")
	fs.IntVar(&o.n, "n", 0, "exits per pio/mmio run (0: 100000, or 20000 under testvm)")
	fs.IntVar(&o.memMiB, "mem", 512, "guest RAM in MiB")
	fs.StringVar(&o.only, "only", "", "run only these measurements, comma-separated: boot, rss, pio, mmio, msix, jail, virtio, trace, mobility, firecracker, smp")
	fs.BoolVar(&o.verbose, "v", os.Getenv("V") == "1", "also print where govmm's and cvmm's start-up time goes, step by step (default on with V=1 in the environment: make bench V=1)")
	fs.BoolVar(&o.inner, "inner", false, "internal: run inside testvm's machine and print JSON")
	fs.StringVar(&o.cvmm, "cvmm", "", "internal: the cvmm binary (with -inner)")
	fs.StringVar(&o.guest, "guest", "", "internal: guest.elf (with -inner)")
	fs.StringVar(&o.floor.goBin, "floor-go", "", "internal: the empty Go program (with -inner)")
	fs.StringVar(&o.floor.cBin, "floor-c", "", "internal: the empty C program (with -inner)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: bench takes only flags", fs.Arg(0))
	}
	for _, m := range strings.Split(o.only, ",") {
		if m != "" && !slices.Contains(measurements, m) {
			return o, fmt.Errorf("-only %q: give some of %s", m, strings.Join(measurements, ", "))
		}
	}
	if o.runs < 0 || o.n < 0 || o.memMiB < 64 || o.memMiB > 3072 {
		return o, fmt.Errorf("-runs and -n must be >= 0 and -mem between 64 and 3072 MiB")
	}
	return o, nil
}

// run is the whole bench; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "bench:", err)
		}
		return 2
	}
	if o.inner {
		return runInner(ctx, o, stdout, stderr)
	}
	if err := runOuter(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// report is a finished run: header lines, the table, the start-up
// breakdown (with -v), what failed.
type report struct {
	Header    []string `json:"header"`
	Rows      []row    `json:"rows"`
	Breakdown []row    `json:"breakdown,omitempty"`
	Errors    []string `json:"errors"`
}

func (r report) write(w io.Writer) error {
	for _, h := range r.Header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	if err := writeTable(w, r.Rows); err != nil {
		return err
	}
	if len(r.Breakdown) > 0 {
		fmt.Fprintln(w, "\nstart-up breakdown, medians of the boot runs (peer cvmm; indented lines are parts of the line above them):")
		if err := writeTable(w, r.Breakdown); err != nil {
			return err
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\nfailed: %s\n", e)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%d measurements failed (above)", len(r.Errors))
	}
	return nil
}

// runOuter builds the pieces, then measures here or inside testvm.
func runOuter(ctx context.Context, o options, stdout, stderr io.Writer) error {
	govmm, err := filepath.Abs(o.govmm)
	if err != nil {
		return fmt.Errorf("-govmm: %w", err)
	}
	if _, err := os.Stat(govmm); err != nil {
		return fmt.Errorf("the govmm binary: %w (run make build, or give -govmm)", err)
	}
	cache, err := filepath.Abs(o.cache)
	if err != nil {
		return fmt.Errorf("-cache: %w", err)
	}
	fmt.Fprintln(stderr, "bench: building the test guest and cvmm")
	g, err := testguest.Build(cache)
	if err != nil {
		return err
	}
	cvmm, err := buildCVMM(cache)
	if err != nil {
		return err
	}
	floor, err := buildFloor(cache)
	if err != nil {
		return err
	}
	gcc, _ := firstLine("gcc", "--version") // buildCVMM just ran it
	versions := []string{
		"govmm:  " + govmmVersion(govmm),
		"cvmm:   bench/cvmm/cvmm.c, gcc " + strings.Join(cvmmFlags, " ") + " (" + gcc + ")",
	}
	if kvmErr := kvmUsable(); kvmErr != nil {
		fmt.Fprintf(stderr, "bench: no usable KVM here (%v): running govmm and cvmm inside testvm's machine\n", kvmErr)
		return runNested(ctx, o, nestedInputs{govmm: govmm, cvmm: cvmm, floor: floor, elf: g.ELF, cache: cache, versions: versions}, stdout, stderr)
	}
	o = withDefaults(o, false)
	o.floor = floor
	s := newSuite(o, govmm, cvmm, g.ELF, cache, stderr)
	qemu, err := firstLine("qemu-system-x86_64", "--version")
	if err != nil {
		s.qemuWhy = "n/a (qemu-system-x86_64 not installed: make deps)"
		qemu = s.qemuWhy
	} else {
		s.chooseQEMU(ctx, "qemu-system-x86_64", g.ELF)
	}
	r := report{Header: append([]string{
		"govmm bench, " + time.Now().Format("2006-01-02 15:04"),
		"host:   " + hostLine(kvm.DetectHost(os.DirFS("/")).String()),
	}, append(versions, "qemu:   "+qemu, runsLine(o))...)}
	for _, h := range r.Header {
		fmt.Fprintln(stderr, "bench: "+h)
	}
	r.Rows = s.all(ctx)
	r.Breakdown = s.breakdown
	for _, e := range s.errs {
		r.Errors = append(r.Errors, e.Error())
	}
	return r.write(stdout)
}

// runInner measures govmm and cvmm here (inside testvm's machine) and
// prints the report as one JSON line after resultPrefix.
func runInner(ctx context.Context, o options, stdout, stderr io.Writer) int {
	if err := kvmUsable(); err != nil {
		fmt.Fprintln(stderr, "bench -inner:", err)
		return 1
	}
	o = withDefaults(o, true)
	s := newSuite(o, o.govmm, o.cvmm, o.guest, filepath.Join(os.TempDir(), "bench-cache"), stderr)
	s.timeout = 2 * time.Minute // a run takes seconds there; more is a stall
	s.qemuWhy = "n/a (QEMU not in the emulated machine)"
	r := report{Header: []string{"inner host: " + hostLine(kvm.DetectHost(os.DirFS("/")).String())}}
	r.Rows = s.all(ctx)
	r.Breakdown = s.breakdown
	for _, e := range s.errs {
		r.Errors = append(r.Errors, e.Error())
	}
	if err := jsonLine(stdout, r); err != nil {
		fmt.Fprintln(stderr, "bench -inner:", err)
		return 1
	}
	return 0
}

func withDefaults(o options, nested bool) options {
	if o.runs == 0 {
		o.runs = map[bool]int{false: 5, true: 3}[nested]
	}
	if o.n == 0 {
		o.n = map[bool]int{false: 100000, true: 20000}[nested]
	}
	return o
}

func newSuite(o options, govmm, cvmm, elf, cache string, log io.Writer) *suite {
	return &suite{
		govmm:    govmmVMM(govmm, elf, o.memMiB, cache),
		cvmm:     cvmmVMM(cvmm, elf, o.memMiB),
		floor:    o.floor,
		memMiB:   o.memMiB,
		runs:     o.runs,
		only:     o.only,
		verbose:  o.verbose,
		n:        o.n,
		timeout:  5 * time.Minute,
		spinWait: 2 * time.Minute,
		log:      log,
	}
}

// chooseQEMU makes s.qemu QEMU on microvm, or on pc when microvm refuses
// isa-debug-exit, after one trial boot (which also warms the page cache).
func (s *suite) chooseQEMU(ctx context.Context, bin, elf string) {
	want := fmt.Sprintf("ring3 ok sum=%08x", testguest.Checksum(1000))
	var why []string
	for _, m := range []string{"microvm", "pc"} {
		v := qemuVMM(bin, m, elf, s.memMiB)
		_, err := runOnce(ctx, v, bootCmdline, false, s.timeout, want)
		if err == nil {
			s.qemu, s.qemuNote = &v, "-M "+m+" -enable-kvm -cpu host, PVH entry"
			if len(why) > 0 {
				s.qemuNote += " (microvm failed: " + strings.Join(why, "; ") + ")"
			}
			return
		}
		why = append(why, firstErrLine(err))
	}
	s.qemuWhy = "failed"
	s.errs = append(s.errs, fmt.Errorf("QEMU could not boot the test guest on microvm or pc: %s", strings.Join(why, "; ")))
}

func firstErrLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// kvmUsable returns why /dev/kvm cannot be used, or nil.
func kvmUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// hostLine describes the machine: KVM kind, kernel, CPU model.
func hostLine(kind string) string {
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, Linux %s, %s", kind, strings.TrimSpace(string(rel)), cpu)
}

func runsLine(o options) string {
	return fmt.Sprintf("method: median of %d runs per VMM (after 1 warm-up), %d MiB guest, n=%d exits per pio/mmio run", o.runs, o.memMiB, o.n)
}

// govmmVersion reads the binary's Go build information.
func govmmVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return bin + " (no Go build information: " + err.Error() + ")"
	}
	s := bi.Main.Version + ", " + bi.GoVersion
	for _, kv := range bi.Settings {
		switch {
		case kv.Key == "vcs.revision" && len(kv.Value) >= 12:
			s += ", rev " + kv.Value[:12]
		case kv.Key == "vcs.modified" && kv.Value == "true":
			s += "+dirty"
		}
	}
	return bin + " (" + s + ")"
}
