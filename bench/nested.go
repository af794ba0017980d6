package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/govmm/govmm/testvm"
)

// resultPrefix starts the line on which the inner bench prints its report.
const resultPrefix = "GOVMM-BENCH-RESULT "

// nestedInputs are the host files the inner bench needs.
type nestedInputs struct {
	govmm, cvmm, elf, cache string
	floor                   floorBins
	versions                []string
}

// runNested runs the bench itself (-inner) inside testvm's QEMU-TCG
// machine, whose nested SVM gives a /dev/kvm, and prints its table with the
// QEMU rows marked n/a.
func runNested(ctx context.Context, o options, in nestedInputs, stdout, stderr io.Writer) error {
	cfg, err := testvm.Find(ctx, in.cache, stderr)
	if err != nil {
		return fmt.Errorf("this host has no /dev/kvm, and testvm cannot run the bench in an emulated machine instead: %w", err)
	}
	dir := filepath.Join(in.cache, "bench-nested")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	// The machine has no libraries: every program must be static.
	self := filepath.Join(dir, "bench")
	if err := buildStatic("github.com/govmm/govmm/bench", self); err != nil {
		return err
	}
	govmm, govmmNote := in.govmm, ""
	if err := testvm.CheckStatic(govmm); err != nil {
		govmm = filepath.Join(dir, "govmm")
		if err := buildStatic("github.com/govmm/govmm/cmd/govmm", govmm); err != nil {
			return err
		}
		govmmNote = fmt.Sprintf("; %s is dynamically linked, so the machine runs a CGO_ENABLED=0 build of the same sources", in.govmm)
	}
	o = withDefaults(o, true)
	cfg.Files = []string{self, govmm, in.cvmm, in.elf, in.floor.goBin, in.floor.cBin}
	cfg.Argv = []string{self, "-inner", "-govmm", govmm, "-cvmm", in.cvmm, "-guest", in.elf,
		"-floor-go", in.floor.goBin, "-floor-c", in.floor.cBin,
		"-runs", strconv.Itoa(o.runs), "-n", strconv.Itoa(o.n), "-mem", strconv.Itoa(o.memMiB), "-only", o.only,
		"-v=" + strconv.FormatBool(o.verbose)}
	cfg.Timeout = 60 * time.Minute
	// Multi-threaded TCG stalls now and then with nested KVM (testvm's
	// note); one govmm pio run hung for 5 minutes that way.
	cfg.SingleThreadTCG = true
	rc := &resultCatcher{log: stderr}
	cfg.Stdout = rc
	qemuVersion, _ := firstLine(cfg.QEMU, "--version")
	header := append([]string{
		"govmm bench, " + time.Now().Format("2006-01-02 15:04"),
		"NOTE:   this host has no /dev/kvm. govmm and cvmm ran inside testvm's machine: nested KVM",
		"        (kvm_amd) on an SVM CPU that QEMU emulates in software (TCG). The absolute numbers",
		"        are those of the emulation; only the ratios between govmm and cvmm mean anything.",
		"host:   nested SVM inside QEMU TCG (" + qemuVersion + ", -cpu max, -accel tcg,thread=single) on " + hostLine("no /dev/kvm"),
	}, in.versions...)
	header[len(header)-len(in.versions)] += govmmNote
	header = append(header, "qemu:   n/a (QEMU not in the emulated machine)")
	for _, h := range header {
		fmt.Fprintln(stderr, "bench: "+h)
	}
	fmt.Fprintln(stderr, "bench: booting testvm's machine (software emulation: this takes minutes)")
	status, err := testvm.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("the bench inside testvm's machine: %w", err)
	}
	r, err := rc.report()
	if err != nil {
		return fmt.Errorf("the bench inside testvm's machine exited %d: %w", status, err)
	}
	r.Header = append(append(header, r.Header...), runsLine(o))
	return r.write(stdout)
}

// resultCatcher passes the machine's console lines on to log and keeps the
// inner bench's result line.
type resultCatcher struct {
	log    io.Writer
	mu     sync.Mutex
	part   []byte
	result string
}

func (c *resultCatcher) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.part = append(c.part, p...)
	for {
		line, rest, ok := bytes.Cut(c.part, []byte("\n"))
		if !ok {
			break
		}
		s := strings.TrimRight(string(line), "\r")
		if r, found := strings.CutPrefix(s, resultPrefix); found {
			c.result = r
		} else {
			fmt.Fprintln(c.log, "  vm| "+s)
		}
		c.part = append(c.part[:0], rest...)
	}
	return len(p), nil
}

func (c *resultCatcher) report() (report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return parseResult(c.result)
}

// jsonLine writes r as the inner bench's result line.
func jsonLine(w io.Writer, r report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s%s\n", resultPrefix, b)
	return err
}

// parseResult decodes the inner bench's JSON report.
func parseResult(s string) (report, error) {
	var r report
	if s == "" {
		return r, fmt.Errorf("it printed no %q line (its output is above)", strings.TrimSpace(resultPrefix))
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("its result line is not the JSON report: %w", err)
	}
	return r, nil
}
