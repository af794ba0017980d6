package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

func TestPowerFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    func(*options) bool
		wantErr string
	}{
		{[]string{"-kernel", "k"}, func(o *options) bool { return o.reboot == rebootExit && o.shutdownTimeout == 30*time.Second }, ""},
		{[]string{"-kernel", "k", "-reboot", "restart", "-shutdown-timeout", "5s"}, func(o *options) bool { return o.reboot == rebootRestart && o.shutdownTimeout == 5*time.Second }, ""},
		{[]string{"-dump-acpi", "/tmp/x", "-cpus", "8"}, func(o *options) bool { return o.dumpACPI == "/tmp/x" && o.cpus == 8 }, ""},
		{[]string{"-kernel", "k", "-reboot", "halt"}, nil, "give exit or restart"},
		{[]string{"-kernel", "k", "-shutdown-timeout", "-1s"}, nil, "-shutdown-timeout"},
		{[]string{"-cpus", "2"}, nil, "no kernel"},
	}
	for _, tt := range tests {
		o, err := parseFlags(tt.args, &bytes.Buffer{})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) = %v, want an error with %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.want(o) {
			t.Errorf("parseFlags(%q) = %+v, %v", tt.args, o, err)
		}
	}
}

// TestDumpACPI runs govmm -dump-acpi and checks it wrote every table, named
// by its signature, with the length its header says.
func TestDumpACPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tables")
	var stdout bytes.Buffer
	status, err := run(context.Background(), []string{"-dump-acpi", dir, "-cpus", "4", "-mem", "1G"}, nil, &stdout, &bytes.Buffer{})
	if status != 0 || err != nil {
		t.Fatalf("govmm -dump-acpi = %d, %v", status, err)
	}
	for _, name := range []string{"RSDP", "XSDT", "FACP", "FACS", "DSDT", "APIC", "MCFG"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".dat"))
		if err != nil {
			t.Errorf("-dump-acpi wrote no %s.dat: %v", name, err)
			continue
		}
		if name != "RSDP" && name != "FACS" && (len(b) < 36 || string(b[:4]) != name || int(b[4])|int(b[5])<<8 != len(b)) {
			t.Errorf("%s.dat = %d bytes starting % x, want a %s table of its stated length", name, len(b), b[:min(8, len(b))], name)
		}
		if !strings.Contains(stdout.String(), name+".dat") {
			t.Errorf("-dump-acpi did not list %s.dat:\n%s", name, stdout.String())
		}
	}
}

func TestEndStatus(t *testing.T) {
	canceled, cancel := context.WithCancelCause(context.Background())
	cancel(&stopSignal{sig: syscall.SIGTERM, grace: time.Second})
	tests := []struct {
		name   string
		ctx    context.Context
		res    machine.Result
		reboot rebootMode
		want   int
	}{
		{"power off", context.Background(), machine.Result{Reason: vcpu.StopPowerOff}, rebootExit, 0},
		{"debug-exit status", context.Background(), machine.Result{Reason: vcpu.StopPowerOff, Status: 7, DebugExit: true}, rebootExit, 7},
		{"reset with -reboot exit", context.Background(), machine.Result{Reason: vcpu.StopReset}, rebootExit, statusReboot},
		{"Ctrl-A x", context.Background(), machine.Result{Reason: vcpu.StopCanceled}, rebootExit, 0},
		{"SIGTERM after the grace period", canceled, machine.Result{Reason: vcpu.StopCanceled}, rebootExit, 143},
	}
	for _, tt := range tests {
		got, err := endStatus(tt.ctx, tt.res, &options{reboot: tt.reboot})
		if got != tt.want {
			t.Errorf("endStatus(%s) = %d, %v, want %d", tt.name, got, err, tt.want)
		}
	}
}

// TestSIGTERMPressesPowerButton sends this process SIGTERM while a power
// button is registered: the button is pressed and the context lives on
// until the grace period ends, then ends with SIGTERM's status; a second
// SIGTERM ends it at once.
func TestSIGTERMPressesPowerButton(t *testing.T) {
	for _, second := range []bool{false, true} {
		ctx, stop := signalContext(context.Background())
		pressed := make(chan struct{}, 2)
		grace := 300 * time.Millisecond
		if second {
			grace = time.Hour
		}
		unregister := onTerminate(ctx, func() { pressed <- struct{}{} }, grace)
		start := time.Now()
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-pressed:
		case <-time.After(10 * time.Second):
			t.Fatal("SIGTERM did not press the power button within 10 s")
		}
		if ctx.Err() != nil {
			t.Errorf("context ended at once on SIGTERM with a power button registered, want it to wait %v", grace)
		}
		if second {
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("second=%v: context still running 10 s after SIGTERM", second)
		}
		var sig *stopSignal
		if !errors.As(context.Cause(ctx), &sig) || sig.status() != 143 {
			t.Errorf("second=%v: cause %v, want SIGTERM's stopSignal", second, context.Cause(ctx))
		}
		if !second && (time.Since(start) < grace || sig.grace != grace) {
			t.Errorf("context ended %v after SIGTERM with grace %v, want after %v", time.Since(start), sig.grace, grace)
		}
		if len(pressed) != 0 {
			t.Errorf("second=%v: the button was pressed again", second)
		}
		unregister()
		stop()
	}
}

// lineWaiter is a writer that says when a line has appeared.
type lineWaiter struct {
	mu   sync.Mutex
	text strings.Builder
	want string
	seen chan struct{}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.text.Write(p)
	if w.seen != nil && strings.Contains(w.text.String(), w.want) {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.text.String()
}

// TestSIGTERMPowersOffGuest runs govmm (as a child process, as every
// test here does) on the test guest's mode=powerbutton and ends the run's
// context once the guest waits for the button, which sends govmm SIGTERM:
// govmm presses the ACPI power button, the guest sees the press and
// powers off through ACPI, and govmm exits 0.
func TestSIGTERMPowersOffGuest(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	// govmm as a child process, as runChild (main_test.go) starts it, but
	// signaled here: runChild's own SIGTERM comes with its context's end,
	// which it reports as an error whatever the child does.
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seen := make(chan struct{})
	w := &lineWaiter{want: "powerbutton: waiting for the power button", seen: seen}
	var stderr lineWaiter
	cmd := exec.Command(os.Args[0], "-v", "-kernel", g.ELF, "-mem", "64M", "-cpus", "2", "-serial", "stdio", "-cache", t.TempDir(), "-append", "mode=powerbutton")
	cmd.Env = append(os.Environ(), asGovmmEnv+"=nostdin")
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = w, &stderr, []*os.File{pw}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-seen:
	case err := <-done:
		t.Fatalf("govmm ended (%v) before the guest waited for the button:\n%s\n%s", err, w.String(), stderr.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the guest did not wait for the button within 60 s:\n%s", w.String())
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		msg, _ := io.ReadAll(r)
		if err != nil || len(msg) > 0 {
			t.Errorf("govmm after SIGTERM: %v, error %q, want status 0 (the guest powered off)\n%s\n%s", err, msg, w.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("govmm still running 60 s after SIGTERM:\n%s", w.String())
	}
	if !strings.Contains(w.String(), "power button pressed") || !strings.Contains(stderr.String(), "guest ended (power off, status 0)") {
		t.Errorf("the guest did not see the power button and power off:\n%s\n%s", w.String(), stderr.String())
	}
	t.Logf("SIGTERM to power off: %v", time.Since(start).Round(time.Millisecond))
}
