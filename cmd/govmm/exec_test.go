package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm/images/agentproto"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// TestExecRefusesEarly checks what govmm exec says before it builds a VM:
// on PVM hosts, without KVM, and without images.
func TestExecRefusesEarly(t *testing.T) {
	cache := t.TempDir()
	tests := []struct {
		name        string
		host        kvm.HostKind
		args        []string
		wantErr     string
		wantWarning string
	}{
		{"PVM host, default kernel", kvm.HostPVM, []string{"-cache", cache, "--", "true"}, "make run CMD='...'", ""},
		{"PVM host, own kernel", kvm.HostPVM, []string{"-kernel", filepath.Join(cache, "nope"), "-initrd", "x", "--", "true"}, "reading the kernel", "warning: this is a PVM host"},
		{"no KVM", kvm.HostUnknown, []string{"-kvm", filepath.Join(cache, "kvm"), "--", "true"}, "make run CMD='...'", ""},
		{"no images.env", kvm.HostSVM, []string{"-kvm", os.DevNull, "-cache", cache, "--", "true"}, "make images", ""},
		{"unbalanced quote", kvm.HostSVM, []string{"-kvm", os.DevNull, "-kernel", os.DevNull, "-initrd", os.DevNull, "-append", `a="b`, "--", "true"}, "unmatched double quote", ""},
		{"usage", kvm.HostSVM, []string{"true"}, "after --", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			status, err := runExec(t.Context(), tt.args, &stdout, &stderr, func() kvm.HostKind { return tt.host })
			if status != statusExecError || err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("govmm exec %q = %d, %v, want %d and one line containing %q", tt.args, status, err, statusExecError, tt.wantErr)
			}
			if tt.wantWarning != "" && strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tt.wantWarning) {
				t.Errorf("govmm exec %q wrote %q to stderr, want one line with %q", tt.args, stderr.String(), tt.wantWarning)
			}
			if stdout.Len() != 0 {
				t.Errorf("govmm exec %q wrote %q to stdout, want nothing", tt.args, stdout.String())
			}
		})
	}
}

// TestExecOutcome checks how govmm exec reads the end of a VM: which
// status, which error, and whether the console's last lines are shown.
func TestExecOutcome(t *testing.T) {
	boot := "Run /init as init process\r\n" + agentproto.Ready + "\r\n"
	running := boot + agentproto.StartLine() + "working\n"
	done := func(st int) string { return running + agentproto.ExitLine(st) }
	o := &execOptions{timeout: 42e9}
	tests := []struct {
		name       string
		console    string
		res        machine.Result
		runErr     error
		cause      error
		wantStatus int
		wantErr    string // "" for none
		wantStderr string
	}{
		{"debug-exit status", done(3), machine.Result{Reason: vcpu.StopPowerOff, Status: 3, DebugExit: true}, nil, nil, 3, "", ""},
		{"debug-exit 0", done(0), machine.Result{Reason: vcpu.StopPowerOff, Status: 0, DebugExit: true}, nil, nil, 0, "", ""},
		{"reset after the marker", done(7) + "govmm agent: could not end the VM through the debug-exit device\r\n", machine.Result{Reason: vcpu.StopReset}, nil, nil, 7, "", "exit marker"},
		{"panic while running", running + "Kernel panic - not syncing: sysrq triggered crash\r\n", machine.Result{Reason: vcpu.StopReset}, nil, nil,
			statusExecError, `while the command was running without the command's exit status: the kernel panicked ("Kernel panic - not syncing: sysrq triggered crash")`, "  | Kernel panic - not syncing: sysrq triggered crash\n"},
		{"panic at boot", "VFS: Unable to mount root fs\r\n", machine.Result{Reason: vcpu.StopReset}, nil, nil,
			statusExecError, "before the command started without the command's exit status", "  | VFS: Unable to mount root fs\n"},
		{"power off with a bad marker", running + "\x1eGOVMM-AGENT-EXIT x\n", machine.Result{Reason: vcpu.StopPowerOff}, nil, nil,
			statusExecError, "after the command ended without", "last lines"},
		{"timeout", running, machine.Result{Reason: vcpu.StopCanceled}, nil, errTimedOut,
			statusTimedOut, "timed out after 42s (-timeout) while the command was running", "  | working\n"},
		{"SIGINT", boot, machine.Result{Reason: vcpu.StopCanceled}, nil, &stopSignal{sig: syscall.SIGINT},
			130, "stopped by interrupt before the command started", ""},
		{"SIGTERM", running, machine.Result{Reason: vcpu.StopCanceled}, nil, &stopSignal{sig: syscall.SIGTERM},
			143, "stopped by terminated while the command was running", ""},
		{"VM error", boot, machine.Result{}, errors.New("vcpu 0: triple fault"), nil,
			statusExecError, "the VM failed before the command started: vcpu 0: triple fault", "  | " + agentproto.Ready},
		{"silent guest", "", machine.Result{Reason: vcpu.StopReset}, nil, nil, statusExecError, "without", "printed nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, stderr bytes.Buffer
			f := agentproto.NewFilter(&out, nil)
			f.Write([]byte(tt.console))
			status, err := execOutcome(o, tt.res, tt.runErr, tt.cause, f, &stderr)
			if status != tt.wantStatus {
				t.Errorf("execOutcome(%+v) status = %d, want %d", tt.res, status, tt.wantStatus)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("execOutcome(%+v) error = %v, want none", tt.res, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n")):
				t.Errorf("execOutcome(%+v) error = %v, want one line containing %q", tt.res, err, tt.wantErr)
			}
			if tt.wantStderr == "" && tt.wantErr == "" && stderr.Len() != 0 {
				t.Errorf("execOutcome(%+v) wrote %q to stderr, want nothing", tt.res, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("execOutcome(%+v) wrote %q to stderr, want %q in it", tt.res, stderr.String(), tt.wantStderr)
			}
		})
	}
}
