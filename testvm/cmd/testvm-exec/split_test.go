package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
)

func TestDeferLinuxEnv(t *testing.T) {
	if deferLinuxEnv != kvmtest.DeferLinuxEnv {
		t.Errorf("deferLinuxEnv = %q, want kvmtest.DeferLinuxEnv, %q", deferLinuxEnv, kvmtest.DeferLinuxEnv)
	}
}

func TestReadDeferred(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		body *string // nil: no file
		want []string
	}{
		{"missing", nil, nil},
		{"empty", ptr(""), nil},
		{"one", ptr("TestA\n"), []string{"TestA"}},
		{"no final newline", ptr("TestA\nTestB"), []string{"TestA", "TestB"}},
		{"repeated (-count, subtests)", ptr("TestB\nTestA\nTestB\nTestA\n"), []string{"TestB", "TestA"}},
		{"blank lines and spaces", ptr("\n TestA \n\n"), []string{"TestA"}},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if tt.body != nil {
			if err := os.WriteFile(path, []byte(*tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := readDeferred(path); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("readDeferred(%s) = %q, %v, want %q", tt.name, got, err, tt.want)
		}
	}
	if got, err := readDeferred(dir); err == nil {
		t.Errorf("readDeferred(a directory) = %q, nil, want an error", got)
	}
}

func ptr(s string) *string { return &s }

func TestPassStatus(t *testing.T) {
	tests := []struct{ host, vm, want int }{
		{0, 0, 0},
		{1, 0, 1},
		{0, 1, 1},
		{2, 1, 2},
		{0, -1, 1},
		{-1, 0, 1},
		{143, 0, 143},
	}
	for _, tt := range tests {
		if got := passStatus(tt.host, tt.vm); got != tt.want {
			t.Errorf("passStatus(%d, %d) = %d, want %d", tt.host, tt.vm, got, tt.want)
		}
	}
}

func TestSetEnv(t *testing.T) {
	env := []string{"A=1", "GOVMM_REQUIRE_KVM=0", "B=2", "GOVMM_REQUIRE_KVM=", deferLinuxEnv + "=/old"}
	got := setEnv(env, "GOVMM_REQUIRE_KVM=1", deferLinuxEnv+"=/new")
	want := []string{"A=1", "B=2", "GOVMM_REQUIRE_KVM=1", deferLinuxEnv + "=/new"}
	if !slices.Equal(got, want) {
		t.Errorf("setEnv(%q) = %q, want %q", env, got, want)
	}
}

// fakeTestBinary stands for a test binary in splitRun's host pass. It
// prints its arguments and the environment testvm-exec gave it, lists the
// names in $FAKE_DEFER (comma-separated) in the deferred-tests file, as
// kvmtest.RequireLinux would, and exits with $FAKE_STATUS. With
// FAKE_WAIT=term it waits for SIGTERM and exits 7; with FAKE_WAIT=any it
// waits to be killed.
const fakeTestBinary = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	fmt.Printf("host pass %q GOVMM_REQUIRE_KVM=%s\n", os.Args[1:], os.Getenv("GOVMM_REQUIRE_KVM"))
	if names := os.Getenv("FAKE_DEFER"); names != "" {
		f, err := os.OpenFile(os.Getenv("GOVMM_DEFER_LINUX_TESTS"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		for _, n := range strings.Split(names, ",") {
			fmt.Fprintln(f, n)
		}
		f.Close()
	}
	switch os.Getenv("FAKE_WAIT") {
	case "term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("waiting")
		<-c
		os.Exit(7)
	case "any":
		fmt.Println("waiting")
		time.Sleep(time.Minute)
	}
	status, _ := strconv.Atoi(os.Getenv("FAKE_STATUS"))
	os.Exit(status)
}
`

// fakeVM stands for runInVM: it records its arguments, prints a line and
// returns status, err.
type fakeVM struct {
	status int
	err    error
	args   []string
	ran    bool
}

func (f *fakeVM) run(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	f.ran, f.args = true, args
	io.WriteString(stdout, "vm pass\n")
	return f.status, f.err
}

func TestSplitRun(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	args := []string{binary, "-test.count=1", "-test.run=Boot|Linux", "-test.v=true"}
	hostOut := `host pass ["-test.count=1" "-test.run=Boot|Linux" "-test.v=true"] GOVMM_REQUIRE_KVM=1` + "\n"
	tests := []struct {
		name       string
		deferred   string // names the host pass lists
		hostStatus string
		vmStatus   int
		wantVMArgs []string // nil: no VM pass
		wantStatus int
		wantStderr string
	}{
		{"nothing deferred", "", "0", 0, nil, 0, ""},
		{"nothing deferred, host fails", "", "1", 0, nil, 1, ""},
		{"one deferred, both pass", "TestFullBoot", "0", 0, []string{binary, "-test.run=^(TestFullBoot)$", "-test.count=1", "-test.v=true"}, 0, "TestFullBoot boots Linux to user space, which this pvm host's KVM cannot"},
		{"two deferred, listed twice", "TestLinux,TestFullBoot,TestLinux", "0", 0, []string{binary, "-test.run=^(TestFullBoot)$|^(TestLinux)$", "-test.count=1", "-test.v=true"}, 0, "TestLinux, TestFullBoot boot Linux"},
		{"vm pass fails", "TestFullBoot", "0", 1, []string{binary, "-test.run=^(TestFullBoot)$", "-test.count=1", "-test.v=true"}, 1, "emulated AMD SVM machine"},
		{"host pass fails", "TestFullBoot", "2", 0, []string{binary, "-test.run=^(TestFullBoot)$", "-test.count=1", "-test.v=true"}, 2, "pvm host"},
		{"both fail", "TestFullBoot", "2", 1, []string{binary, "-test.run=^(TestFullBoot)$", "-test.count=1", "-test.v=true"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FAKE_DEFER", tt.deferred)
			t.Setenv("FAKE_STATUS", tt.hostStatus)
			t.Setenv("GOVMM_REQUIRE_KVM", "")
			vm := &fakeVM{status: tt.vmStatus}
			var stdout, stderr bytes.Buffer
			status, err := splitRun(context.Background(), args, kvm.HostPVM, nil, &stdout, &stderr, vm.run)
			if err != nil || status != tt.wantStatus {
				t.Errorf("splitRun() = %d, %v, want %d, nil", status, err, tt.wantStatus)
			}
			if tt.wantVMArgs == nil {
				if vm.ran {
					t.Errorf("splitRun() ran a VM pass with %q, want none", vm.args)
				}
				if stdout.String() != hostOut || stderr.Len() != 0 {
					t.Errorf("splitRun() wrote %q and %q, want %q and nothing", stdout.String(), stderr.String(), hostOut)
				}
				return
			}
			if !slices.Equal(vm.args, tt.wantVMArgs) {
				t.Errorf("splitRun() ran the VM pass with %q, want %q", vm.args, tt.wantVMArgs)
			}
			if want := hostOut + "vm pass\n"; stdout.String() != want {
				t.Errorf("splitRun() wrote %q to stdout, want %q: both passes, in order", stdout.String(), want)
			}
			if lines := strings.Count(stderr.String(), "\n"); lines != 1 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("splitRun() wrote %q to stderr, want one line with %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestSplitRunTimeout(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	t.Setenv("FAKE_DEFER", "TestFullBoot")
	t.Setenv("FAKE_STATUS", "0")
	vm := &fakeVM{}
	args := []string{binary, "-test.timeout=10m0s", "-test.v=true"}
	status, err := splitRun(context.Background(), args, kvm.HostPVM, nil, io.Discard, io.Discard, vm.run)
	if err != nil || status != 0 || len(vm.args) != 4 {
		t.Fatalf("splitRun(%q) = %d, %v, VM pass %q, want 0, nil, 3 flags", args, status, err, vm.args)
	}
	left, err := time.ParseDuration(strings.TrimPrefix(vm.args[2], "-test.timeout="))
	if err != nil || left > 10*time.Minute || left < 9*time.Minute {
		t.Errorf("splitRun(%q) gave the VM pass %s, want what the host pass left of 10m", args, vm.args[2])
	}
}

func TestSplitRunFailFast(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	t.Setenv("FAKE_DEFER", "TestFullBoot")
	t.Setenv("FAKE_STATUS", "1")
	vm := &fakeVM{}
	var stdout, stderr bytes.Buffer
	status, err := splitRun(context.Background(), []string{binary, "-test.failfast"}, kvm.HostPVM, nil, &stdout, &stderr, vm.run)
	if err != nil || status != 1 || vm.ran {
		t.Errorf("splitRun(-test.failfast, host fails) = %d, %v, VM pass %v, want 1, nil, none", status, err, vm.ran)
	}
	if !strings.Contains(stderr.String(), "TestFullBoot not run") {
		t.Errorf("splitRun(-test.failfast, host fails) said %q, want which tests it did not run", stderr.String())
	}
}

func TestSplitRunCancelled(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	t.Setenv("FAKE_DEFER", "TestFullBoot")
	t.Setenv("FAKE_STATUS", "0")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as a signal does, while the host pass runs
	vm := &fakeVM{}
	status, err := splitRun(ctx, []string{binary}, kvm.HostPVM, nil, io.Discard, io.Discard, vm.run)
	if err == nil || status == 0 || vm.ran {
		t.Errorf("splitRun(cancelled) = %d, %v, VM pass %v, want non-zero, an error, none", status, err, vm.ran)
	}
}

func TestSplitRunErrors(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	t.Setenv("FAKE_DEFER", "TestFullBoot")
	t.Setenv("FAKE_STATUS", "0")
	tests := []struct {
		name string
		args []string
		vm   *fakeVM
	}{
		{"no binary", []string{filepath.Join(t.TempDir(), "none.test")}, &fakeVM{}},
		{"vm error", []string{binary}, &fakeVM{status: -1, err: io.ErrUnexpectedEOF}},
		{"host pass took the timeout", []string{binary, "-test.timeout=1ns"}, &fakeVM{}},
	}
	for _, tt := range tests {
		status, err := splitRun(context.Background(), tt.args, kvm.HostPVM, nil, io.Discard, io.Discard, tt.vm.run)
		if err == nil || status == 0 {
			t.Errorf("splitRun(%s) = %d, %v, want non-zero and an error", tt.name, status, err)
		}
	}
}

// lineWaiter is a writer that closes seen when a line equal to want has
// been written.
type lineWaiter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want+"\n")
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want+"\n") {
		close(w.seen)
	}
	return len(p), nil
}

func TestRunChildForwardsSignals(t *testing.T) {
	binary := buildProgram(t, fakeTestBinary)
	tests := []struct {
		wait string
		want int
	}{
		{"term", 7},                         // it handles SIGTERM
		{"any", 128 + int(syscall.SIGTERM)}, // SIGTERM ends it
	}
	for _, tt := range tests {
		t.Run(tt.wait, func(t *testing.T) {
			env := append(os.Environ(), "FAKE_WAIT="+tt.wait)
			out := &lineWaiter{want: "waiting", seen: make(chan struct{})}
			sigs := make(chan os.Signal, 1)
			go func() {
				<-out.seen
				sigs <- syscall.SIGTERM
			}()
			start := time.Now()
			status, err := runChild([]string{binary}, env, sigs, out, io.Discard)
			if err != nil || status != tt.want {
				t.Errorf("runChild(FAKE_WAIT=%s) after SIGTERM = %d, %v, want %d, nil", tt.wait, status, err, tt.want)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("runChild(FAKE_WAIT=%s) took %v: the signal did not end it", tt.wait, took)
			}
		})
	}
}
