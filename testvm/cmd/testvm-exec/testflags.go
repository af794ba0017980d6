package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file reads and rewrites the -test.* flags go test gives a test
// binary, as the binary's flag package parses them: one dash or two, the
// value after "=" or, for flags that take one, in the next argument; the
// last occurrence wins; "--" ends the flags.

// flagArg splits one argument into a flag's name and value.
func flagArg(a string) (name, val string, hasVal, ok bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
		return "", "", false, false
	}
	rest := strings.TrimPrefix(a[1:], "-")
	name, val, hasVal = strings.Cut(rest, "=")
	return name, val, hasVal, name != ""
}

// flagValue returns the value of the last -name flag in args. A bool flag
// given bare is "true"; another flag given bare takes the next argument.
func flagValue(args []string, name string, isBool bool) (string, bool) {
	var val string
	found := false
	for i := 0; i < len(args) && args[i] != "--"; i++ {
		n, v, hasVal, ok := flagArg(args[i])
		if !ok || n != name {
			continue
		}
		switch {
		case hasVal:
		case isBool:
			v = "true"
		case i+1 < len(args):
			i++
			v = args[i]
		}
		val, found = v, true
	}
	return val, found
}

// withoutFlag returns args without any -name flag (and, for a flag that
// takes a value given bare, the argument after it).
func withoutFlag(args []string, name string, isBool bool) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...)
		}
		n, _, hasVal, ok := flagArg(args[i])
		if !ok || n != name {
			out = append(out, args[i])
			continue
		}
		if !hasVal && !isBool {
			i++
		}
	}
	return out
}

// testTimeout is the test binary's -test.timeout plus bootSlack, or 0 (no
// limit) when it has none.
func testTimeout(args []string) time.Duration {
	if d := timeoutFlag(args); d > 0 {
		return d + bootSlack
	}
	return 0
}

// timeoutFlag is the test binary's -test.timeout, or 0 (none).
func timeoutFlag(args []string) time.Duration {
	v, _ := flagValue(args, "test.timeout", false)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0
	}
	return d
}

// failFast reports whether -test.failfast is on.
func failFast(args []string) bool {
	v, _ := flagValue(args, "test.failfast", true)
	on, _ := strconv.ParseBool(v)
	return on
}

// vmPassArgs turns the host pass's test flags into the VM pass's: -test.run
// (and -test.bench, for benchmarks) narrowed to exactly the deferred
// top-level names, with the user's patterns for subtests kept, and
// -test.timeout cut to what the host pass, which took hostTook, left of it.
// Every other flag stays as it was.
func vmPassArgs(args, deferred []string, hostTook time.Duration) ([]string, error) {
	var tests, benchmarks []string
	for _, name := range deferred {
		if strings.HasPrefix(name, "Benchmark") {
			benchmarks = append(benchmarks, name)
		} else {
			tests = append(tests, name)
		}
	}
	userRun, _ := flagValue(args, "test.run", false)
	run, err := narrowPattern(userRun, tests)
	if err != nil {
		return nil, fmt.Errorf("-test.run=%s: %w", userRun, err)
	}
	front := []string{"-test.run=" + run}
	if len(benchmarks) > 0 {
		userBench, _ := flagValue(args, "test.bench", false)
		bench, err := narrowPattern(userBench, benchmarks)
		if err != nil {
			return nil, fmt.Errorf("-test.bench=%s: %w", userBench, err)
		}
		front = append(front, "-test.bench="+bench)
	}
	rest := withoutFlag(withoutFlag(args, "test.run", false), "test.bench", false)
	if timeout := timeoutFlag(args); timeout > 0 {
		left := timeout - hostTook
		if left <= 0 {
			return nil, fmt.Errorf("the host pass took %v, all of -test.timeout=%v, and left nothing for %s in the emulated machine: raise go test's -timeout", hostTook.Round(time.Second), timeout, strings.Join(deferred, ", "))
		}
		front = append(front, "-test.timeout="+left.Round(time.Second).String())
		rest = withoutFlag(rest, "test.timeout", false)
	}
	return append(front, rest...), nil
}

// narrowPattern returns a -test.run (or -test.bench) pattern that selects
// exactly the top-level tests names, each quoted and anchored, and, below
// them, what the user's pattern selected. A pattern is a list of
// alternatives split at '|' outside brackets and parentheses, each a list
// of per-level expressions split at '/'; a test runs if, for some
// alternative, each level's expression matches its name there. So each
// alternative whose top-level expression matched a name keeps its lower
// levels, with its top level replaced by those names. No names gives "^$".
func narrowPattern(user string, names []string) (string, error) {
	if len(names) == 0 {
		return "^$", nil
	}
	var alts []string
	for _, alt := range splitPattern(user, '|') {
		levels := splitPattern(alt, '/')
		// package testing reads white space in a pattern as '_', as in names.
		top, err := regexp.Compile(strings.Map(spaceToUnderscore, levels[0]))
		if err != nil {
			return "", err
		}
		var matched []string
		for _, n := range names {
			if top.MatchString(n) {
				matched = append(matched, regexp.QuoteMeta(n))
			}
		}
		if len(matched) == 0 {
			continue
		}
		alts = append(alts, strings.Join(append([]string{"^(" + strings.Join(matched, "|") + ")$"}, levels[1:]...), "/"))
	}
	if len(alts) == 0 {
		return "", fmt.Errorf("no part of it matches %s, which the host pass ran", strings.Join(names, ", "))
	}
	return strings.Join(alts, "|"), nil
}

func spaceToUnderscore(r rune) rune {
	if unicode.IsSpace(r) {
		return '_'
	}
	return r
}

// splitPattern splits a test pattern at each sep that is outside brackets
// and parentheses and not escaped with a backslash, as package testing
// does.
func splitPattern(p string, sep byte) []string {
	var parts []string
	brackets, parens, from := 0, 0, 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case c == '[':
			brackets++
		case c == ']' && brackets > 0:
			brackets--
		case c == '(' && brackets == 0:
			parens++
		case c == ')' && brackets == 0:
			parens--
		case c == sep && brackets == 0 && parens == 0:
			parts = append(parts, p[from:i])
			from = i + 1
		}
	}
	return append(parts, p[from:])
}
