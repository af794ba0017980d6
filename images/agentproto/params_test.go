package agentproto

import (
	"reflect"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		in   Config
		want string
	}{
		// "echo hi; exit 3" in base64url without padding.
		{Config{Cmd: "echo hi; exit 3"}, "govmm.cmd=ZWNobyBoaTsgZXhpdCAz"},
		{Config{Cmd: "echo hi; exit 3", Shell: true}, "govmm.cmd=ZWNobyBoaTsgZXhpdCAz govmm.shell=1"},
		// '-' and '_' are the URL alphabet's 62 and 63.
		{Config{Cmd: "??>"}, "govmm.cmd=Pz8-"},
		{Config{Cmd: "???"}, "govmm.cmd=Pz8_"},
		{Config{Shell: true}, ""},
		{Config{}, ""},
		{Config{Cmd: "true", ExitMMIO: 0xd000_1000, Quiet: true}, "govmm.cmd=dHJ1ZQ govmm.exit=mmio:0xd0001000 govmm.quiet=1"},
	}
	for _, tt := range tests {
		if got := Encode(tt.in); got != tt.want {
			t.Errorf("Encode(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Config
	}{
		{"console=ttyS0 quiet", Config{}},
		{"console=ttyS0 govmm.cmd=ZWNobyBoaTsgZXhpdCAz\n", Config{Cmd: "echo hi; exit 3"}},
		{"govmm.cmd=ZWNobyBoaTsgZXhpdCAz govmm.shell=1", Config{Cmd: "echo hi; exit 3", Shell: true}},
		{"govmm.cmd=Pz8-Pw==", Config{Cmd: "??>?"}}, // padding is accepted
		{"govmm.cmd=Pz8_", Config{Cmd: "???"}},
		{"govmm.shell=0", Config{}},
		{"govmm.shell", Config{Shell: true}},
		{"govmm.exit=mmio:0xd0001000 govmm.quiet", Config{ExitMMIO: 0xd000_1000, Quiet: true}},
		{"govmm.exit=mmio:3489665024", Config{ExitMMIO: 0xd000_1000}},
		{"govmm.cmd=YQ govmm.cmd=Yg", Config{Cmd: "b"}}, // the last one counts
		{`x="govmm.cmd=YQ y" govmm.quiet=0`, Config{}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"govmm.cmd=not*base64", "base64url"},
		{"govmm.cmd=ab+/", "base64url"},
		{"govmm.shell=yes", "want 1 or 0"},
		{"govmm.quiet=2", "want 1 or 0"},
		{"govmm.exit=port:0xf4", "want mmio:0xADDR"},
		{"govmm.exit=0xd0001000", "want mmio:0xADDR"},
		{"govmm.exit=mmio:0", "non-zero address"},
		{"govmm.exit=mmio:0xzz", "non-zero address"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got != (Config{}) {
			t.Errorf("Parse(%q) = %+v, %v, want a zero Config and an error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func TestAppend(t *testing.T) {
	c := Config{Cmd: "true", Quiet: true}
	tests := []struct {
		base, want, wantErr string
	}{
		{"console=ttyS0 quiet", "console=ttyS0 quiet govmm.cmd=dHJ1ZQ govmm.quiet=1", ""},
		{"console=ttyS0 \n", "console=ttyS0 govmm.cmd=dHJ1ZQ govmm.quiet=1", ""},
		{"", "govmm.cmd=dHJ1ZQ govmm.quiet=1", ""},
		{`a="b c"`, `a="b c" govmm.cmd=dHJ1ZQ govmm.quiet=1`, ""},
		{`a="b c`, "", "unmatched double quote"},
	}
	for _, tt := range tests {
		got, err := Append(tt.base, c)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Append(%q) = %q, %v, want an error containing %q", tt.base, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Append(%q) = %q, %v, want %q", tt.base, got, err, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
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
		if got := Split(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCommandLine checks the host and the agent agree: whatever the user
// put on the command line before it (with balanced quotes and no govmm.*
// parameter of its own), Parse reads back exactly the Config that Append
// wrote. It also feeds Parse the user's text alone, which must give a
// Config or an error, never both.
func FuzzCommandLine(f *testing.F) {
	f.Add("console=ttyS0 reboot=k panic=-1 quiet", "echo hi; exit 3", false, uint64(0xd000_1000), true)
	f.Add(`a="b c" d`, "printf '%s\\n' \"$HOME\"\n", true, uint64(0), false)
	f.Add("", "", false, uint64(1), false)
	f.Add("govmm.cmd=!!! govmm.exit=mmio:", "\x00\xff", true, uint64(1<<63), true)
	f.Fuzz(func(t *testing.T, base, cmd string, shell bool, exit uint64, quiet bool) {
		if c, err := Parse(base); err != nil && c != (Config{}) {
			t.Errorf("Parse(%q) = %+v with error %v, want a zero Config with an error", base, c, err)
		}
		for _, p := range Split(base) {
			if strings.HasPrefix(p, "govmm.") {
				return // the user's own parameter may win or be malformed
			}
		}
		want := Config{Cmd: cmd, Shell: shell && cmd != "", ExitMMIO: exit, Quiet: quiet}
		line, err := Append(base, want)
		if err != nil {
			if strings.Count(base, `"`)%2 == 0 {
				t.Errorf("Append(%q, %+v) = %v, want no error: the quotes are balanced", base, want, err)
			}
			return
		}
		got, err := Parse(line)
		if err != nil || got != want {
			t.Errorf("Parse(Append(%q, %+v)) = %+v, %v, want the same Config\nline: %q", base, want, got, err, line)
		}
	})
}
