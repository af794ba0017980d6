package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/images/testguest/lessons"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// TestFlightRecorderOnFailure: when the guest triple-faults, govmm prints
// the flight recorder's last exits before the one-line error, ending with
// the shutdown itself; -flight 0 prints none.
func TestFlightRecorderOnFailure(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flight string
		want   bool
	}{{"4096", true}, {"0", false}} {
		t.Run("flight="+tt.flight, func(t *testing.T) {
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := []string{"-kernel", g.ELF, "-append", "mode=triple", "-mem", "64M", "-serial", "none", "-flight", tt.flight}
			status, err := run(ctx, args, nil, &bytes.Buffer{}, &stderr)
			if status != 1 || err == nil || !strings.Contains(err.Error(), "triple fault") {
				t.Fatalf("govmm %q = %d, %v, want 1 and the triple fault", args, status, err)
			}
			out := stderr.String()
			if got := strings.Contains(out, "govmm: flight recorder: the last"); got != tt.want {
				t.Fatalf("flight recorder printed = %v, want %v:\n%s", got, tt.want, out)
			}
			if !tt.want {
				return
			}
			var recs []string
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "  #") {
					recs = append(recs, line)
				}
			}
			if len(recs) < 2 || !strings.Contains(recs[len(recs)-1], "KVM_EXIT_SHUTDOWN (shutdown (triple fault))") ||
				!strings.Contains(out, "KVM_EXIT_IO out port 0x3f8") {
				t.Errorf("the flight recorder's dump does not end with the triple fault after the guest's output:\n%s", out)
			}
		})
	}
}

// TestStatsAtExit: -stats prints the exits by reason and device when the
// guest ends, as many as the golden trace has, and KVM's own counters
// where the host has them.
func TestStatsAtExit(t *testing.T) {
	kvmtest.Require(t)
	dir := buildLessons(t)
	golden, err := lessons.Golden("hello16")
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-kernel", filepath.Join(dir, "hello16.elf"), "-serial", "none", "-stats"}, lessons.Flags...)
	if status, err := run(ctx, args, nil, &bytes.Buffer{}, &stderr); status != 0 || err != nil {
		t.Fatalf("govmm %q = %d, %v\n%s", args, status, err, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		fmt.Sprintf(`govmm: exits to user space: %d,`, len(golden)),
		fmt.Sprintf(`KVM_EXIT_IO +%d `, len(golden)),
		fmt.Sprintf(`port serial \(COM1\) +%d `, len(golden)-1),
		`port debug-exit +1 `,
		`KVM's own counters, vCPU 0`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("-stats output lacks %q:\n%s", want, out)
		}
	}
}

// TestStatsOnSIGUSR1: SIGUSR1 prints the statistics while the guest runs,
// and the guest runs on.
func TestStatsOnSIGUSR1(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The test binary as govmm, as runChild starts it, but with the
	// process at hand to signal.
	cmd := exec.CommandContext(ctx, os.Args[0], "-kernel", g.ELF, "-append", "mode=spin", "-mem", "64M", "-serial", "stdio")
	cmd.Env = append(os.Environ(), asGovmmEnv+"=nostdin")
	stdout := &watchWriter{want: "spin: ring 3 loops forever", seen: make(chan struct{})}
	stderr := &watchWriter{want: "(SIGUSR1) exits to user space", seen: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-stdout.seen:
	case err := <-waited:
		t.Fatalf("govmm ended before the guest spun: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stderr.seen:
	case err := <-waited:
		t.Fatalf("govmm ended at SIGUSR1: %v\n%s", err, stderr.String())
	case <-ctx.Done():
		t.Fatalf("no statistics after SIGUSR1:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err == nil || !strings.Contains(err.Error(), "130") {
		t.Errorf("govmm after SIGINT: %v, want exit status 130", err)
	}
	if !strings.Contains(stderr.String(), "(SIGUSR1)   port serial (COM1)") {
		t.Errorf("the SIGUSR1 table lacks the serial port:\n%s", stderr.String())
	}
}
