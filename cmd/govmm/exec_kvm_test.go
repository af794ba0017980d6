package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// TestExecDefaultGuest runs govmm exec, in process, on the real default
// guest (Debian's cloud kernel and the agent's initrd, from images.env),
// one boot per case: the command's exact output and status, failing
// commands, a hanging one caught by -timeout, and a kernel panic.
func TestExecDefaultGuest(t *testing.T) {
	kvmtest.RequireLinux(t)
	cache := kvmtest.CacheDir()
	if _, err := imagesenv.Load(cache); err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	// A boot takes well under a second with hardware virtualization and
	// 7-15 s in testvm's emulated machine; the hang's timeout must cover
	// the boot and still catch the command, so it is set from the first
	// case's whole run: twice that, plus 15 s.
	var hang time.Duration
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantOut    string // exact
		wantErr    string // "" for none
		wantStderr string // "" for an empty stderr
	}{
		{"output and status", []string{"--", "printf 'line one\\nline two\\n'; echo to stderr >&2; printf 'no newline'; exit 3"},
			3, "line one\nline two\nto stderr\nno newline", "", ""},
		{"false", []string{"--", "false"}, 1, "", "", ""},
		{"a failing command in words", []string{"--", "cat", "/nonexistent"}, 1, "cat: open /nonexistent: no such file or directory\n", "", ""},
		{"a hang stopped by -timeout", []string{"-timeout", "HANG", "--", "echo sleeping; sleep 600"},
			statusTimedOut, "sleeping\n", "timed out after HANG (-timeout) while the command was running", "  | sleeping\n"},
		{"a kernel panic", []string{"--", "echo about to crash; echo c > /proc/sysrq-trigger; echo survived"},
			statusExecError, "about to crash\n", `while the command was running without the command's exit status: the kernel panicked ("Kernel panic - not syncing: sysrq triggered crash")`, "govmm exec: the guest console's last lines:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if hang == 0 && strings.Contains(tt.wantErr, "HANG") {
				hang = 60 * time.Second // the hang case run alone
			}
			args := append([]string{"exec", "-cache", cache, "-kvm", kvmtest.Path(), "-timeout", "3m"}, tt.args...)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "HANG", hang.String())
			}
			tt.wantErr = strings.ReplaceAll(tt.wantErr, "HANG", hang.String())
			var stdout, stderr bytes.Buffer
			start := time.Now()
			status, err := run(t.Context(), args, nil, &stdout, &stderr)
			took := time.Since(start)
			t.Logf("govmm %q: status %d after %v", args, status, took.Round(time.Millisecond))
			if hang == 0 && status == tt.wantStatus {
				hang = (2*took + 15*time.Second).Round(time.Second)
			}
			if status != tt.wantStatus {
				t.Errorf("govmm %q exit status = %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", args, status, err, tt.wantStatus, stdout.String(), stderr.String())
			}
			got := stdout.String()
			if tt.name == "a kernel panic" {
				// The kernel's last words share the console and follow;
				// the command never went on.
				if strings.Contains(got, "survived") {
					t.Errorf("govmm %q stdout = %q: the command went on after the panic", args, got)
				}
				got, _, _ = strings.Cut(got, "[")
			}
			if got != tt.wantOut {
				t.Errorf("govmm %q stdout = %q, want %q\nstderr:\n%s", args, stdout.String(), tt.wantOut, stderr.String())
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("govmm %q error = %v, want none", args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Errorf("govmm %q error = %v, want one line containing %q", args, err, tt.wantErr)
			}
			if tt.wantStderr == "" && stderr.Len() != 0 || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("govmm %q stderr = %q, want %q", args, stderr.String(), tt.wantStderr)
			}
		})
	}
}
