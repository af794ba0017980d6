package main

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// config is what the agent takes from the kernel command line.
type config struct {
	Cmd   string // govmm.cmd, decoded: a command for /bin/sh -c
	Shell bool   // govmm.shell=1: an interactive shell after Cmd
}

// parseConfig reads the govmm.* parameters from a kernel command line.
func parseConfig(cmdline string) (config, error) {
	var cfg config
	for _, p := range splitCmdline(cmdline) {
		key, val, _ := strings.Cut(p, "=")
		switch key {
		case "govmm.cmd":
			cmd, err := decodeCmd(val)
			if err != nil {
				return config{}, fmt.Errorf("govmm.cmd=%q is not base64url (RFC 4648 section 5); make it with images.AgentCommandLine: %w", val, err)
			}
			cfg.Cmd = cmd
		case "govmm.shell":
			cfg.Shell = val == "1" || val == "" || val == "true"
		}
	}
	return cfg, nil
}

// decodeCmd decodes base64 with the URL alphabet, with or without padding.
func decodeCmd(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return string(b), err
}

// splitCmdline splits a kernel command line into parameters as the kernel
// does (lib/cmdline.c, next_arg): at spaces outside double quotes, with the
// quotes removed ("a=\"b c\"" is one parameter, a=b c).
func splitCmdline(s string) []string {
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
