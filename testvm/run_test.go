package testvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeQEMU writes a shell script that stands in for QEMU: it finds the
// markers in the /init of the initramfs it is given and prints body, in
// which $S and $E are the start and exit markers.
func fakeQEMU(t *testing.T, body string) Config {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -initrd ] && initrd=$2; shift; done
E=$(grep -a "^m='" "$initrd" | cut -d"'" -f2)
S=$(grep -a "^echo '.GOVMM-TESTVM-" "$initrd" | cut -d"'" -f2)
` + body + "\n"
	qemu := filepath.Join(dir, "qemu")
	busybox := filepath.Join(dir, "busybox")
	for p, s := range map[string]string{qemu: script, busybox: "not really"} {
		if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Config{QEMU: qemu, Kernel: "/no/kernel", Busybox: busybox, Argv: []string{"/prog"}}
}

func TestRunWithFakeQEMU(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		wantRC  int
		wantOut string
		wantErr string // "" for none
	}{
		{"status", `printf 'BIOS\n%s\nhello\n%s3\nreboot\n' "$S" "$E"`, 0, 3, "hello\n", ""},
		{"no kvm", `printf 'kvm: no SVM\n%snokvm\n' "$E"`, 0, ExitNoKVM, "", "no /dev/kvm"},
		{"no dir", `printf '%snodir\n' "$E"`, 0, -1, "", "cannot cd"},
		{"panic", `printf '%s\ntest out\nKernel panic - not syncing\n' "$S"; echo 'qemu: bye' >&2`, 0, -1, "test out\nKernel panic - not syncing\n", "Kernel panic"},
		{"qemu fails", `echo 'qemu: could not load kernel' >&2; exit 1`, 0, -1, "", "could not load kernel"},
		{"hang is killed", `printf '%s\nstuck\n' "$S"; exec sleep 60`, 500 * time.Millisecond, -1, "stuck\n", "did not finish within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeQEMU(t, tt.body)
			var out bytes.Buffer
			c.Stdout = &out
			c.Timeout = tt.timeout
			start := time.Now()
			rc, err := Run(context.Background(), c)
			if time.Since(start) > 20*time.Second {
				t.Errorf("Run took %v: QEMU was not killed", time.Since(start))
			}
			if rc != tt.wantRC || out.String() != tt.wantOut {
				t.Errorf("Run() = %d with output %q, want %d with %q (err %v)", rc, out.String(), tt.wantRC, tt.wantOut, err)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	c := fakeQEMU(t, `printf '%s\n' "$S"; exec sleep 60`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := Run(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "cancelled") || time.Since(start) > 20*time.Second {
		t.Errorf("Run(cancelled) = %v after %v, want a cancel error at once", err, time.Since(start))
	}
}

func TestRunConfigErrors(t *testing.T) {
	ok := fakeQEMU(t, "exit 0")
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no qemu", func(c *Config) { c.QEMU = "" }},
		{"no kernel", func(c *Config) { c.Kernel = "" }},
		{"no busybox", func(c *Config) { c.Busybox = "" }},
		{"no argv", func(c *Config) { c.Argv = nil }},
		{"option as program", func(c *Config) { c.Argv = []string{"-x"} }},
		{"tiny memory", func(c *Config) { c.Mem = 1 << 20 }},
		{"missing file", func(c *Config) { c.Files = []string{"/no/such/file"} }},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		if rc, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%s) = %d, nil, want an error", tt.name, rc)
		}
	}
	if _, err := Run(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("Run(Config{}) error = %v, want one that says what to install", err)
	}
	long := ok
	long.qmpSocket = "/" + strings.Repeat("d", maxSocketPath)
	if _, err := Run(context.Background(), long); err == nil || !strings.Contains(err.Error(), "set TMPDIR to a shorter folder") {
		t.Errorf("Run(socket path of %d bytes) error = %v, want one that says to shorten TMPDIR", len(long.qmpSocket), err)
	}
	var errNoFile *os.PathError
	c := ok
	c.Files = []string{"/no/such/file"}
	if _, err := Run(context.Background(), c); !errors.As(err, &errNoFile) {
		t.Errorf("Run(missing file) error = %v, want it to wrap the *os.PathError", err)
	}
}

func TestQEMUArgs(t *testing.T) {
	base := Config{QEMU: "q", Kernel: "/k", Busybox: "/b", Argv: []string{"/p"}}
	common := []string{"-cpu max", fmt.Sprintf("-m %dM ", DefaultMem>>20), fmt.Sprintf("-smp %d ", DefaultCPUs), "-nodefaults", "-no-reboot", "-kernel /k", "-initrd /i", "console=ttyS0", "panic=-1",
		// COM2, after COM1, is the heartbeat's pipe; QMP is the watchdog's.
		"-chardev file,id=beat,path=/dev/fd/3 -serial chardev:beat ", "-qmp unix:/t/qmp.sock,server=on,wait=off "}
	tests := []struct {
		name   string
		edit   func(*Config)
		want   []string // in the command line, besides common
		absent []string
	}{
		{"batch", func(*Config) {}, []string{"-accel tcg ", "-nographic", "-serial stdio -chardev file,id=beat"}, []string{"-chardev stdio", "signal=off"}},
		{"single thread", func(c *Config) { c.SingleThreadTCG = true }, []string{"-accel tcg,thread=single"}, nil},
		{"interactive", func(c *Config) { c.Interactive = true },
			// The serial port alone on stdio: no monitor mux, so no Ctrl-A
			// escapes, and signal=off, so Ctrl-C goes to the guest.
			[]string{"-chardev stdio,id=con,signal=off", "-serial chardev:con -display none -monitor none -chardev file,id=beat"},
			[]string{"-nographic", "-serial stdio", "mux=on", "mon:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			c, err := c.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(qemuArgs(c, "/i", "/t/qmp.sock"), " ") + " "
			for _, want := range append(common, tt.want...) {
				if !strings.Contains(got, want) {
					t.Errorf("qemuArgs() = %s, want %q in it", got, want)
				}
			}
			for _, bad := range tt.absent {
				if strings.Contains(got, bad) {
					t.Errorf("qemuArgs() = %s, want no %q in it", got, bad)
				}
			}
		})
	}
}

func TestInteractiveDefaults(t *testing.T) {
	c, err := Config{QEMU: "q", Kernel: "/k", Busybox: "/b", Argv: []string{"/p"}, Interactive: true}.withDefaults()
	if err != nil || c.Stdout != os.Stdout {
		t.Errorf("withDefaults(Interactive) Stdout = %v, %v, want os.Stdout", c.Stdout, err)
	}
}

func TestQEMUOptionValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/testvm-1/qmp.sock", "/tmp/testvm-1/qmp.sock"},
		{"/tmp/a,b/qmp.sock", "/tmp/a,,b/qmp.sock"},
	}
	for _, tt := range tests {
		if got := qemuOptionValue(tt.in); got != tt.want {
			t.Errorf("qemuOptionValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer that the watchdog's goroutine may write to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunWatchdogFakeQEMU runs the watchdog against fake QEMUs: one that
// falls silent (and has no monitor to poke), one whose only sign of life
// is the heartbeat on fd 3, and a silent one with the watchdog off.
func TestRunWatchdogFakeQEMU(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		watchdog time.Duration
		timeout  time.Duration
		wantRC   int
		wantErr  string // "" for none
		wantLog  string // "" for no log at all
		stalled  bool
	}{
		{"silent", `printf '%s\nstuck\n' "$S"; exec sleep 60`, time.Second, 0, -1, "stuck", "poking it failed", true},
		// Heartbeats alone, for over twice the watchdog's 4 s, keep it
		// quiet; its poke would come after 2 s of silence, which a
		// shell loop beating every 0.1 s does not leave even on a
		// loaded host (2 s was once too tight, with 1 s to the poke).
		{"heartbeat only", `printf '%s\n' "$S"; i=0; while [ $i -lt 100 ]; do echo "testvm-beat $i.5" >&3; sleep 0.1; i=$((i+1)); done; printf 'done\n%s0\n' "$E"`,
			4 * time.Second, 0, 0, "", "", false},
		{"watchdog off", `printf '%s\n' "$S"; exec sleep 60`, -1, 3 * time.Second, -1, "did not finish within", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeQEMU(t, tt.body)
			var log syncBuffer
			c.Log, c.Watchdog, c.Timeout = &log, tt.watchdog, tt.timeout
			start := time.Now()
			rc, err := Run(context.Background(), c)
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("Run took %v, want the watchdog or the timeout to end it", took)
			}
			if rc != tt.wantRC || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run() = %d, %v, want %d and an error with %q", rc, err, tt.wantRC, tt.wantErr)
			}
			if errors.Is(err, ErrStalled) != tt.stalled {
				t.Errorf("errors.Is(Run() error, ErrStalled) = %v, want %v", !tt.stalled, tt.stalled)
			}
			var s *StallError
			if tt.stalled && errors.As(err, &s) && (!strings.Contains(s.State, "could not be read") || s.LastBeat != "") {
				t.Errorf("StallError State %q, LastBeat %q, want no state (no monitor) and no heartbeat", s.State, s.LastBeat)
			}
			if got := log.String(); (got == "") != (tt.wantLog == "") || !strings.Contains(got, tt.wantLog) {
				t.Errorf("Config.Log got %q, want %q", got, tt.wantLog)
			}
		})
	}
}
