package main

import (
	"reflect"
	"testing"
)

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"console=ttyS0 quiet\n", []string{"console=ttyS0", "quiet"}},
		{"  a=1\t b=2  ", []string{"a=1", "b=2"}},
		{`a="b c" d`, []string{"a=b c", "d"}},
		{`"a=b c"`, []string{"a=b c"}},
		{`a=""`, []string{"a="}},
	}
	for _, tt := range tests {
		if got := splitCmdline(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		in   string
		want config
	}{
		{"console=ttyS0 quiet", config{}},
		// "echo hi; exit 3" in base64url without padding, as
		// images.AgentCommandLine writes it (images tests the same text).
		{"console=ttyS0 govmm.cmd=ZWNobyBoaTsgZXhpdCAz", config{Cmd: "echo hi; exit 3"}},
		{"govmm.cmd=ZWNobyBoaTsgZXhpdCAz govmm.shell=1", config{Cmd: "echo hi; exit 3", Shell: true}},
		// Padding is accepted; '-' and '_' are the URL alphabet's 62 and 63.
		{"govmm.cmd=Pz8-Pw==", config{Cmd: "??>?"}},
		{"govmm.cmd=Pz8_", config{Cmd: "???"}},
		{"govmm.shell=0", config{}},
		{"govmm.shell", config{Shell: true}},
	}
	for _, tt := range tests {
		got, err := parseConfig(tt.in)
		if err != nil {
			t.Errorf("parseConfig(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseConfig(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, in := range []string{"govmm.cmd=not*base64", "govmm.cmd=ab+/"} {
		if got, err := parseConfig(in); err == nil {
			t.Errorf("parseConfig(%q) = %+v, want an error", in, got)
		}
	}
}

// FuzzParseConfig feeds the agent's command-line parser any text: the
// kernel command line is whatever the VM's user wrote.
func FuzzParseConfig(f *testing.F) {
	f.Add(`console=ttyS0 govmm.cmd=ZWNobyBoaQ govmm.shell=1`)
	f.Add(`"govmm.cmd=a b" govmm.cmd=!!! quiet`)
	f.Add(`govmm.cmd= govmm.shell=yes`)
	f.Fuzz(func(t *testing.T, cmdline string) {
		cfg, err := parseConfig(cmdline)
		if err != nil && (cfg.Cmd != "" || cfg.Shell) {
			t.Errorf("parseConfig(%q) = %+v with error %v, want a zero config with an error", cmdline, cfg, err)
		}
	})
}
