package agentproto

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Kernel-command-line parameters the agent reads.
const (
	// ParamCmd carries a shell command, base64url without padding (RFC
	// 4648 section 5), so any bytes fit in one parameter.
	ParamCmd = "govmm.cmd"
	// ParamShell=1 starts an interactive shell after the command.
	ParamShell = "govmm.shell"
	// ParamExit names the device that ends the VM with the command's
	// status: "mmio:0xADDR", the guest-physical address of the status
	// register. Without it the agent ends the VM with a reset.
	ParamExit = "govmm.exit"
	// ParamQuiet=1 keeps all but the kernel's emergency messages off the
	// console while the command runs, so they do not mix with its output.
	ParamQuiet = "govmm.quiet"
)

// Config is what the agent takes from the kernel command line.
type Config struct {
	Cmd   string // a command for /bin/sh -c; "" for none (then a shell)
	Shell bool   // an interactive shell after Cmd
	// ExitMMIO is the guest-physical address of the debug-exit device's
	// status register; 0 for none (the agent resets instead).
	ExitMMIO uint64
	Quiet    bool // lower the console log level while Cmd runs
}

// Encode returns the kernel-command-line parameters that give the agent c.
// Shell is only written with a command (a shell alone is what the agent
// does with no command).
func Encode(c Config) string {
	var params []string
	if c.Cmd != "" {
		params = append(params, ParamCmd+"="+base64.RawURLEncoding.EncodeToString([]byte(c.Cmd)))
		if c.Shell {
			params = append(params, ParamShell+"=1")
		}
	}
	if c.ExitMMIO != 0 {
		params = append(params, ParamExit+"=mmio:"+fmt.Sprintf("%#x", c.ExitMMIO))
	}
	if c.Quiet {
		params = append(params, ParamQuiet+"=1")
	}
	return strings.Join(params, " ")
}

// Append returns base with c's parameters added at the end. base must have
// balanced double quotes: the kernel would take an open quote as the start
// of one long parameter and swallow the agent's.
func Append(base string, c Config) (string, error) {
	if n := strings.Count(base, `"`); n%2 != 0 {
		return "", fmt.Errorf("kernel command line %q has an unmatched double quote: close it (the kernel would read everything after it as one parameter)", base)
	}
	params := Encode(c)
	switch {
	case params == "":
		return base, nil
	case strings.TrimSpace(base) == "":
		return params, nil
	}
	return strings.TrimRight(base, " \t\n") + " " + params, nil
}

// Parse reads the govmm.* parameters from a kernel command line (as
// /proc/cmdline shows it); other parameters are ignored, and a parameter
// given twice takes its last value. A malformed govmm.* value gives a zero
// Config and an error that says what is wrong.
func Parse(cmdline string) (Config, error) {
	var c Config
	for _, p := range Split(cmdline) {
		key, val, _ := strings.Cut(p, "=")
		switch key {
		case ParamCmd:
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(val, "="))
			if err != nil {
				return Config{}, fmt.Errorf("%s=%q is not base64url (RFC 4648 section 5); make it with agentproto.Encode: %w", ParamCmd, val, err)
			}
			c.Cmd = string(b)
		case ParamShell:
			on, err := flag(val)
			if err != nil {
				return Config{}, fmt.Errorf("%s=%q: %w", ParamShell, val, err)
			}
			c.Shell = on
		case ParamQuiet:
			on, err := flag(val)
			if err != nil {
				return Config{}, fmt.Errorf("%s=%q: %w", ParamQuiet, val, err)
			}
			c.Quiet = on
		case ParamExit:
			addr, err := parseExit(val)
			if err != nil {
				return Config{}, err
			}
			c.ExitMMIO = addr
		}
	}
	return c, nil
}

// flag reads a boolean parameter: a bare name, 1 or true is on; 0 or false
// is off.
func flag(val string) (bool, error) {
	switch val {
	case "", "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("want 1 or 0")
}

// parseExit reads "mmio:0xADDR" (any base strconv accepts with a prefix).
func parseExit(val string) (uint64, error) {
	kind, addr, ok := strings.Cut(val, ":")
	if !ok || kind != "mmio" {
		return 0, fmt.Errorf("%s=%q: want mmio:0xADDR, the debug-exit status register's guest-physical address", ParamExit, val)
	}
	n, err := strconv.ParseUint(addr, 0, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%s=%q: %q is not a non-zero address like 0xd0001000", ParamExit, val, addr)
	}
	return n, nil
}

// Split splits a kernel command line into parameters as the kernel does
// (lib/cmdline.c, next_arg): at blanks outside double quotes, with the
// quotes removed ("a=\"b c\"" is one parameter, a=b c).
func Split(s string) []string {
	var params []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				params = append(params, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		params = append(params, cur.String())
	}
	return params
}
