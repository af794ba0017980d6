package main

import (
	"bytes"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseExecFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*execOptions) bool
		wantErr string
	}{
		{"shell text", []string{"--", "echo hi; exit 3"},
			func(o *execOptions) bool {
				return o.command == "echo hi; exit 3" && o.kernel == "" && o.timeout == defaultExecTimeout && o.cmdline == execCmdline && o.mem == 512<<20
			}, ""},
		{"words", []string{"-mem", "1G", "--", "ls", "-l", "a b"},
			func(o *execOptions) bool { return o.command == "ls -l 'a b'" && o.mem == 1<<30 }, ""},
		{"flags after -- are the command's", []string{"-v", "--", "-v", "--", "-timeout"},
			func(o *execOptions) bool { return o.verbose && o.command == "-v -- -timeout" }, ""},
		{"overrides", []string{"-kernel", "bz", "-initrd", "rd", "--timeout=90s", "-cpus", "2", "--", "true"},
			func(o *execOptions) bool {
				return o.kernel == "bz" && o.initrd == "rd" && o.timeout == 90*time.Second && o.cpus == 2
			}, ""},
		{"no timeout", []string{"-timeout", "0", "--", "true"}, func(o *execOptions) bool { return o.timeout == 0 }, ""},
		{"-v shows the boot", []string{"-v", "--", "true"}, func(o *execOptions) bool { return o.cmdline == execVerboseCmdline }, ""},
		{"-v keeps an explicit -append", []string{"-v", "-append", "console=ttyS0 quiet", "--", "true"},
			func(o *execOptions) bool { return o.cmdline == "console=ttyS0 quiet" }, ""},
		{"no --", []string{"echo", "hi"}, nil, "put the command after --"},
		{"nothing after --", []string{"-v", "--"}, nil, "no command"},
		{"no arguments", nil, nil, "no command"},
		{"empty command", []string{"--", " "}, nil, "empty"},
		{"negative timeout", []string{"-timeout", "-1s", "--", "true"}, nil, "-timeout"},
		{"bad timeout", []string{"-timeout", "soon", "--", "true"}, nil, "govmm exec -h"},
		{"bad mem", []string{"-mem", "lots", "--", "true"}, nil, "-mem"},
		{"no -serial in exec", []string{"-serial", "none", "--", "true"}, nil, "govmm exec -h"},
		{"debug devices on", []string{"-debug-devices", "on", "--", "true"}, func(o *execOptions) bool { return o.debugDevices }, ""},
		{"exec needs the debug devices", []string{"-debug-devices", "off", "--", "true"}, nil, "govmm exec needs the debug-exit device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseExecFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseExecFlags(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseExecFlags(%q) = %v", tt.args, err)
			}
			if !tt.check(o) {
				t.Errorf("parseExecFlags(%q) = %+v, not what the case expects", tt.args, *o)
			}
		})
	}
}

// TestExecHelp checks govmm exec -h documents its flags, statuses and the
// PVM behaviour, and govmm -h points to it.
func TestExecHelp(t *testing.T) {
	var out bytes.Buffer
	status, err := run(t.Context(), []string{"exec", "-h"}, nil, &out, &out)
	if status != 0 || err != nil {
		t.Fatalf("govmm exec -h = %d, %v, want 0, nil", status, err)
	}
	for _, want := range []string{"--timeout", "--kernel", "--initrd", "--append", "--verbose", "-- CMD...",
		"images.env", "124", "125", "130", "143", "PVM", "make run CMD=", "byte for byte", "/dev/null"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("govmm exec -h lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if _, err := parseFlags([]string{"-h"}, &out); err != nil || !strings.Contains(out.String(), "govmm exec [flags] -- CMD...") {
		t.Errorf("govmm -h = %v, want it to mention govmm exec:\n%s", err, out.String())
	}
}

func TestCommandText(t *testing.T) {
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"echo hi; exit 3"}, "echo hi; exit 3"},
		{[]string{"ls", "-l", "/"}, "ls -l /"},
		{[]string{"echo", "a b", "", "it's", "$HOME", "*", "FOO=bar", "x\ny"}, `echo 'a b' '' 'it'\''s' '$HOME' '*' 'FOO=bar' 'x` + "\n" + `y'`},
		{[]string{"printf", "%s,%d", "user@host:/a+b.c_d-e"}, "printf %s,%d user@host:/a+b.c_d-e"},
	}
	for _, tt := range tests {
		if got := commandText(tt.words); got != tt.want {
			t.Errorf("commandText(%q) = %q, want %q", tt.words, got, tt.want)
		}
	}
}

// TestShellJoinThroughShell hands shellJoin's text to a real POSIX shell
// and checks it sees the same words.
func TestShellJoinThroughShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	words := []string{"plain", "two words", "", "it's", `"double"`, "$HOME", "`id`", "*", "a\\b", "FOO=bar", "tab\there", "new\nline", "~", "#hash", "ünï"}
	out, err := exec.Command(sh, "-c", "for w in "+shellJoin(words)+`; do printf '%s\0' "$w"; done`).Output()
	if err != nil {
		t.Fatalf("sh -c with shellJoin(%q): %v", words, err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("sh read shellJoin(%q) as %q", words, got)
	}
}
