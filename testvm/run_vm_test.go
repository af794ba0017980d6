package testvm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/images"
)

// kvmProbe is a program for the VM: it opens /dev/kvm, prints what the
// test checks, and exits 7.
const kvmProbe = `package main

import (
	"fmt"
	"os"
)

func main() {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open /dev/kvm:", err)
		os.Exit(1)
	}
	f.Close()
	wd, _ := os.Getwd()
	data, _ := os.ReadFile("data.txt")
	fmt.Printf("kvm ok\nwd=%s\nenv=%s\nrequire=%s\ndata=%s\n", wd, os.Getenv("TESTVM_PROBE"), os.Getenv("GOVMM_REQUIRE_KVM"), data)
	os.Exit(7)
}
`

// vmConfig returns Find's Config, or skips when QEMU or a cached Debian
// kernel ($GOVMM_CACHE, else the repository's .cache) is missing: this test
// never downloads a kernel. It does not use kvmtest, so that testvm-exec
// runs this package's tests on the host.
func vmConfig(t *testing.T) Config {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	cache := os.Getenv("GOVMM_CACHE")
	if cache == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root, err := images.FindModuleRoot(wd)
		if err != nil {
			t.Skip(err)
		}
		cache = filepath.Join(root, ".cache")
	}
	ctx := context.Background()
	if pkg, err := images.ResolveDebianKernel(ctx); err == nil {
		if _, err := os.Stat(filepath.Join(cache, "debian-kernel", pkg.Version)); err != nil {
			t.Skipf("Debian kernel %s is not in %s: run `make images` (or set GOVMM_CACHE)", pkg.Version, cache)
		}
	} else if m, _ := filepath.Glob(filepath.Join(cache, "debian-kernel", "*", "boot", "vmlinuz-*")); len(m) == 0 {
		t.Skipf("no Debian kernel in %s: run `make images` (or set GOVMM_CACHE)", cache)
	}
	var log bytes.Buffer
	c, err := Find(ctx, cache, &log)
	if err != nil {
		t.Skipf("Find: %v\n%s", err, log.String())
	}
	return c
}

// TestRunKVMProbe boots the VM and runs a static Go program in it that
// opens /dev/kvm and exits 7.
func TestRunKVMProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG: skipped with -short")
	}
	c := vmConfig(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the probe program")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod": "module probe\n", "main.go": kvmProbe, "data.txt": "from the host",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "probe")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}

	var out bytes.Buffer
	c.Files = []string{bin, dir}
	c.Dir = dir
	c.Argv = []string{bin}
	c.Env = []string{"TESTVM_PROBE=it's passed"}
	c.Timeout = 3 * time.Minute
	c.Stdout = &out
	start := time.Now()
	rc, err := Run(context.Background(), c)
	t.Logf("Run took %v", time.Since(start))
	if err != nil || rc != 7 {
		t.Fatalf("Run(probe) = %d, %v, want 7, nil\noutput:\n%s", rc, err, out.String())
	}
	want := "kvm ok\nwd=" + dir + "\nenv=it's passed\nrequire=1\ndata=from the host\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("Run(probe) output = %q, want it to contain %q", out.String(), want)
	}
	if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), markerPrefix) {
		t.Errorf("Run(probe) output = %q, want no \\r and no exit marker", out.String())
	}
}

// watchedBuffer is a buffer that a test can wait on for some text while
// another goroutine writes to it.
type watchedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on each write
}

func newWatchedBuffer() *watchedBuffer {
	return &watchedBuffer{changed: make(chan struct{})}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.b.Write(p)
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// waitFor waits until the buffer holds text or ended is closed, at most
// for timeout, and says whether the text came.
func (w *watchedBuffer) waitFor(text string, ended <-chan struct{}, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		found, changed := strings.Contains(w.b.String(), text), w.changed
		w.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-changed:
		case <-ended:
			return strings.Contains(w.String(), text)
		case <-deadline:
			return false
		}
	}
}

// qmpCommand runs one QMP command on the monitor at path.
func qmpCommand(t *testing.T, path, command string) {
	t.Helper()
	q, err := dialQMP(path, qmpTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.execute(command, nil); err != nil {
		t.Fatal(err)
	}
}

// TestRunWatchdog boots the VM with a program that prints a line and
// sleeps, and stops the emulated machine through QEMU's monitor, which
// freezes it as QEMU's race does while the monitor stays alive. The
// watchdog pokes it; the test lets it run on (QMP cont), and the watchdog
// notes that the poke woke it. The test stops it again, and Run returns a
// StallError with the machine's registers within the watchdog's bound.
func TestRunWatchdog(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG: skipped with -short")
	}
	c := vmConfig(t)
	const limit = 16 * time.Second // the poke after 8 s leaves the machine 8 s to beat after cont, 4 times its beat interval
	c.qmpSocket = filepath.Join(t.TempDir(), "qmp.sock")
	c.Argv = []string{"/bin/sh", "-c", "echo sleeping; exec sleep 600"}
	c.Watchdog = limit
	c.Timeout = 5 * time.Minute // a safety net: the stall must end Run long before
	out, log := newWatchedBuffer(), newWatchedBuffer()
	c.Stdout, c.Log = out, log
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rc int
	var err error
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		rc, err = Run(ctx, c)
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		cancel()
		<-ended
		t.Fatalf(format+"\nRun() = %d, %v\nwatchdog log:\n%s", append(args, rc, err, log.String())...)
	}
	if !out.waitFor("sleeping\n", ended, 3*time.Minute) {
		fail("the program did not start; output:\n%s", out.String())
	}
	qmpCommand(t, c.qmpSocket, "stop")
	if !log.waitFor("pressed shift", ended, limit+time.Minute) {
		fail("no poke within %v of stopping the machine", limit+time.Minute)
	}
	qmpCommand(t, c.qmpSocket, "cont")
	if !log.waitFor("woke after the poke (pokes that woke it: 1)", ended, time.Minute) {
		fail("the watchdog did not see the machine wake")
	}
	qmpCommand(t, c.qmpSocket, "stop")
	stopped := time.Now()
	select {
	case <-ended:
	case <-time.After(limit + 2*time.Minute):
		fail("Run did not return within %v of stopping the machine", limit+2*time.Minute)
	}
	took := time.Since(stopped)
	t.Logf("Run returned %v after the second stop; error:\n%v", took, err)
	var s *StallError
	if !errors.Is(err, ErrStalled) || !errors.As(err, &s) {
		t.Fatalf("Run() = %d, %v, want a StallError", rc, err)
	}
	if took > limit+time.Minute || took < limit/2 {
		t.Errorf("Run returned %v after the machine stopped, want between %v and %v", took, limit/2, limit+time.Minute)
	}
	for _, want := range []string{"RIP=", "CR3=", "info lapic:", "IRR"} {
		if !strings.Contains(s.State, want) {
			t.Errorf("StallError.State = %q, want %q in it", s.State, want)
		}
	}
	if strings.Contains(s.State, "YMM") {
		t.Errorf("StallError.State = %q, want no vector registers", s.State)
	}
	if s.Pokes != 1 || s.LastBeat == "" || !strings.Contains(s.Output, "sleeping") || !strings.Contains(s.Poke, "did not wake it") {
		t.Errorf("StallError = %+v, want 1 earlier poke, a heartbeat, the program's line and a poke that did not wake it", s)
	}
}

// TestRunWatchdogQuietProgram runs a program that prints nothing for
// more than twice the watchdog's limit: the heartbeat alone must keep the
// watchdog quiet. (A slow boot on a busy host may draw a poke before the
// program starts; the test only looks at the program's silence.)
func TestRunWatchdogQuietProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG: skipped with -short")
	}
	c := vmConfig(t)
	const limit = 6 * time.Second
	c.Argv = []string{"/bin/sh", "-c", "echo start; sleep 14; echo done; exit 3"}
	c.Watchdog = limit
	c.Timeout = 5 * time.Minute
	both := newWatchedBuffer() // the program's output and the watchdog's log, in order
	c.Stdout, c.Log = both, both
	rc, err := Run(context.Background(), c)
	_, during, _ := strings.Cut(both.String(), "start\n")
	if rc != 3 || err != nil || during != "done\n" {
		t.Errorf("Run(silent for 14 s, watchdog %v) = %d, %v with output and log %q, want 3, nil, and only \"done\" after \"start\"", limit, rc, err, both.String())
	}
}
