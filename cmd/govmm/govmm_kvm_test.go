package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// TestCommandRunsGuests runs the govmm command, in process, on the test
// guest, and checks the exit status contract and the serial output.
func TestCommandRunsGuests(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, []byte("some initrd bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantSerial string
		wantErr    string
	}{
		{"success through debug-exit", []string{"-kernel", g.BzImage, "-initrd", initrd, "-mem", "96M", "-append", "mode=check loops=1000"}, 0, "ring3 ok", ""},
		{"guest status passes through", []string{"--kernel", g.ELF, "--mem=64M", "--append", "expect_mem=1"}, testguest.ExitCheckFailed, "CHECK FAILED", ""},
		{"triple fault is a one-line error", []string{"-kernel", g.ELF, "-append", "mode=triple"}, 1, "mode=triple", "triple fault"},
		{"missing kernel file", []string{"-kernel", filepath.Join(dir, "nope")}, 1, "", "reading the kernel"},
		{"corrupt kernel", []string{"-kernel", initrd}, 1, "", "bzImage"},
		{"initrd larger than RAM", []string{"-kernel", g.ELF, "-initrd", g.BzImage, "-mem", "1M"}, 1, "", "MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial := filepath.Join(t.TempDir(), "serial")
			args := append([]string{"-serial", "file:" + serial, "-cache", dir}, tt.args...)
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			status, err := run(ctx, args, nil, &bytes.Buffer{}, &stderr)
			if status != tt.wantStatus {
				t.Errorf("govmm %q exit status = %d (%v), want %d\nstderr:\n%s", tt.args, status, err, tt.wantStatus, stderr.String())
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("govmm %q error = %v, want one line containing %q", tt.args, err, tt.wantErr)
			}
			if tt.wantErr == "" && err != nil {
				t.Errorf("govmm %q error = %v, want none", tt.args, err)
			}
			out, _ := os.ReadFile(serial)
			if !strings.Contains(string(out), tt.wantSerial) {
				t.Errorf("serial output lacks %q:\n%s", tt.wantSerial, out)
			}
		})
	}
}
