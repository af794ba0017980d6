package testvm

import (
	"strings"
	"testing"
)

func TestInitScript(t *testing.T) {
	c := Config{
		Modules: []string{"/k/irqbypass.ko", "/k/kvm.ko", "/k/kvm-amd.ko"},
		Env:     []string{"GOVMM_CACHE=/c", "QUOTE=it's"},
		Dir:     "/src/pkg dir",
		Argv:    []string{"/tmp/pkg.test", "-test.run=X|Y"},
	}
	s, err := initScript(c, "START-1", "EXIT-1=")
	if err != nil {
		t.Fatalf("initScript() = %v", err)
	}
	inOrder := []string{
		"#!/bin/sh\n",
		"busybox --install -s /bin",
		"mount -t devtmpfs dev /dev",
		`beat() { read -r up idle </proc/uptime; echo "testvm-beat $up"; }`,
		"if beat >/dev/ttyS1 2>/dev/null; then",
		"(while sleep 2; do beat; done) </dev/null >/dev/ttyS1 2>&1 &",
		"stty -F /dev/console -onlcr",
		"insmod '/testvm/modules/00-irqbypass.ko'",
		"insmod '/testvm/modules/01-kvm.ko'",
		"insmod '/testvm/modules/02-kvm-amd.ko'",
		"[ ! -c /dev/kvm ]",
		"dmesg | grep -i -E 'kvm|svm'",
		"finish nokvm",
		"cd '/src/pkg dir' || finish nodir",
		"echo 'START-1'",
		"env -i 'PATH=/bin' 'HOME=/tmp' 'TMPDIR=/tmp' 'GOVMM_REQUIRE_KVM=1' 'GOVMM_CACHE=/c' 'QUOTE=it'\\''s' '/tmp/pkg.test' '-test.run=X|Y' </dev/null",
		"finish $?",
	}
	rest := s
	for _, want := range inOrder {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("initScript() lacks %q after the earlier parts; script:\n%s", want, s)
		}
		rest = rest[i+len(want):]
	}
	if !strings.Contains(s, `m='EXIT-1='`) || !strings.Contains(s, `echo "$m$1"`) || !strings.Contains(s, "poweroff -f") {
		t.Errorf("initScript() does not print the exit marker and power off; script:\n%s", s)
	}
}

// TestInitScriptStdio checks where the program's standard streams go: the
// console, a terminal, in interactive runs; /dev/null for input otherwise;
// and that the machine's kernel messages are kept off the console in
// interactive and quiet runs only.
func TestInitScriptStdio(t *testing.T) {
	const env = "env -i 'PATH=/bin' 'HOME=/tmp' 'TMPDIR=/tmp' 'GOVMM_REQUIRE_KVM=1' '/p'"
	tests := []struct {
		interactive, quiet bool
		want               string
		wantDmesg          bool
	}{
		{false, false, env + " </dev/null\n", false},
		{false, true, "dmesg -n 1\n" + env + " </dev/null\n", true},
		{true, false, "dmesg -n 1\n" + env + " </dev/console >/dev/console 2>&1\n", true},
	}
	for _, tt := range tests {
		s, err := initScript(Config{Argv: []string{"/p"}, Interactive: tt.interactive, QuietKernel: tt.quiet}, "S", "E=")
		if err != nil || !strings.Contains(s, tt.want) {
			t.Errorf("initScript(Interactive=%v, QuietKernel=%v) = %v, want a line ending %q; script:\n%s", tt.interactive, tt.quiet, err, tt.want, s)
		}
		if got := strings.Contains(s, "dmesg -n 1"); got != tt.wantDmesg {
			t.Errorf("initScript(Interactive=%v, QuietKernel=%v) lowers the console log level: %v, want %v", tt.interactive, tt.quiet, got, tt.wantDmesg)
		}
	}
}

func TestInitScriptErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
	}{
		{"no program", Config{}},
		{"env without =", Config{Argv: []string{"/p"}, Env: []string{"JUSTNAME"}}},
		{"env without name", Config{Argv: []string{"/p"}, Env: []string{"=v"}}},
	}
	for _, tt := range tests {
		if _, err := initScript(tt.c, "S", "E="); err == nil {
			t.Errorf("initScript(%s) = nil error, want one", tt.name)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$HOME `x`", "'$HOME `x`'"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
