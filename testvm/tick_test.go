package testvm

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestParseQEMUVersion(t *testing.T) {
	tests := []struct {
		out  string
		want string // "" for an error
	}{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n", "7.2.22"},
		{"QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)\n", "10.0.2"},
		{"QEMU emulator version 10.2.0\n", "10.2.0"},
		{"QEMU emulator version 8.2.0 (v8.2.0-dirty)\n", "8.2.0"},
		{"QEMU emulator version 9.1\n", "9.1"},
		{"qemu-system-x86_64: unknown option\n", ""},
		{"QEMU emulator version seven\n", ""},
		{"QEMU emulator version 7.2.0-rc1\n", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := parseQEMUVersion(tt.out)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("parseQEMUVersion(%q) = %q, %v, want %q", tt.out, got, err, tt.want)
		}
	}
}

func TestNeedsPeriodicTick(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"7.2.22", true},   // Debian 12
		{"10.0.2", true},   // bookworm-backports: still froze
		{"10.1.50", true},  // a development tree before 10.2
		{"10.1.91", true},  // 10.2's release candidates: kept to be safe
		{"10.2.0", false},  // the fix
		{"10.2", false},    // micro left out
		{"10.10.0", false}, // compared as numbers, not text
		{"11.0.0", false},
		{"", true}, // unknown: old
		{"garbage", true},
		{"1.2.3.4", true},
	}
	for _, tt := range tests {
		if got := needsPeriodicTick(tt.version); got != tt.want {
			t.Errorf("needsPeriodicTick(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// TestQueryQEMUVersion asks the installed QEMU, when there is one.
func TestQueryQEMUVersion(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	v, err := queryQEMUVersion(context.Background(), qemu)
	if _, ok := parseVersion(v); err != nil || !ok {
		t.Errorf("queryQEMUVersion(%s) = %q, %v, want a version", qemu, v, err)
	}
	if _, err := queryQEMUVersion(context.Background(), "/bin/false"); err == nil {
		t.Error("queryQEMUVersion(/bin/false) = nil error, want one")
	}
}

func TestKernelCmdlineTick(t *testing.T) {
	tests := []struct {
		version  string
		wantTick bool
	}{
		{"7.2.22", true}, {"", true}, {"10.2.0", false},
	}
	for _, tt := range tests {
		c := Config{QEMU: "q", Kernel: "/k", Busybox: "/b", Argv: []string{"/p"}, QEMUVersion: tt.version}
		args := qemuArgs(c, "/i", "/q")
		got := args[len(args)-1]
		if args[len(args)-2] != "-append" || strings.Contains(got, periodicTickArgs) != tt.wantTick {
			t.Errorf("qemuArgs(QEMUVersion %q) ends %q, want -append with the periodic tick %v", tt.version, args[len(args)-2:], tt.wantTick)
		}
	}
}
