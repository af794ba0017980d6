package main

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestFlagValue(t *testing.T) {
	tests := []struct {
		args   []string
		name   string
		isBool bool
		want   string
		found  bool
	}{
		{[]string{"-test.run=A", "-test.v=true"}, "test.run", false, "A", true},
		{[]string{"--test.run", "A|B"}, "test.run", false, "A|B", true},
		{[]string{"-test.run=A", "-test.run=B"}, "test.run", false, "B", true},
		{[]string{"-test.run="}, "test.run", false, "", true},
		{[]string{"-test.v=true"}, "test.run", false, "", false},
		{[]string{"--", "-test.run=A"}, "test.run", false, "", false},
		{[]string{"-test.failfast"}, "test.failfast", true, "true", true},
		{[]string{"-test.failfast=false"}, "test.failfast", true, "false", true},
		{[]string{"-test.runx=A"}, "test.run", false, "", false},
	}
	for _, tt := range tests {
		got, found := flagValue(tt.args, tt.name, tt.isBool)
		if got != tt.want || found != tt.found {
			t.Errorf("flagValue(%q, %s) = %q, %v, want %q, %v", tt.args, tt.name, got, found, tt.want, tt.found)
		}
	}
}

func TestWithoutFlag(t *testing.T) {
	tests := []struct {
		args   []string
		name   string
		isBool bool
		want   []string
	}{
		{[]string{"-test.run=A", "-test.v=true"}, "test.run", false, []string{"-test.v=true"}},
		{[]string{"-test.count=2", "--test.run", "A", "-test.v"}, "test.run", false, []string{"-test.count=2", "-test.v"}},
		{[]string{"-test.run=A", "-test.run=B"}, "test.run", false, nil},
		{[]string{"-test.failfast", "-test.run=A"}, "test.failfast", true, []string{"-test.run=A"}},
		{[]string{"-test.run=A", "--", "-test.run=B"}, "test.run", false, []string{"--", "-test.run=B"}},
		{[]string{"-test.v=true"}, "test.run", false, []string{"-test.v=true"}},
	}
	for _, tt := range tests {
		if got := withoutFlag(tt.args, tt.name, tt.isBool); !slices.Equal(got, tt.want) {
			t.Errorf("withoutFlag(%q, %s) = %q, want %q", tt.args, tt.name, got, tt.want)
		}
	}
}

func TestTestTimeout(t *testing.T) {
	tests := []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-test.paniconexit0", "-test.timeout=10m0s"}, 10*time.Minute + bootSlack},
		{[]string{"--test.timeout", "1m"}, time.Minute + bootSlack},
		{[]string{"-test.timeout=0s"}, 0},
		{[]string{"-test.timeout=soon"}, 0},
		{[]string{"-test.v=true"}, 0},
	}
	for _, tt := range tests {
		if got := testTimeout(tt.args); got != tt.want {
			t.Errorf("testTimeout(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestFailFast(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-test.failfast"}, true},
		{[]string{"-test.failfast=true"}, true},
		{[]string{"-test.failfast=false"}, false},
		{[]string{"-test.failfast", "-test.failfast=false"}, false},
	}
	for _, tt := range tests {
		if got := failFast(tt.args); got != tt.want {
			t.Errorf("failFast(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestSplitPattern(t *testing.T) {
	tests := []struct {
		p    string
		sep  byte
		want []string
	}{
		{"", '/', []string{""}},
		{"A/B/C", '/', []string{"A", "B", "C"}},
		{"A|B/C", '|', []string{"A", "B/C"}},
		{"(A|B)/C", '|', []string{"(A|B)/C"}},
		{"(A/B)/C", '/', []string{"(A/B)", "C"}},
		{"[/|]x/y", '/', []string{"[/|]x", "y"}},
		{"[]x/y]", '/', []string{"[]x", "y]"}}, // as package testing splits it
		{`A\/B/C`, '/', []string{`A\/B`, "C"}},
		{"]A/B", '/', []string{"]A", "B"}},
	}
	for _, tt := range tests {
		if got := splitPattern(tt.p, tt.sep); !slices.Equal(got, tt.want) {
			t.Errorf("splitPattern(%q, %q) = %q, want %q", tt.p, tt.sep, got, tt.want)
		}
	}
}

func TestNarrowPattern(t *testing.T) {
	tests := []struct {
		user  string
		names []string
		want  string
	}{
		{"", nil, "^$"},
		{"", []string{"TestA"}, "^(TestA)$"},
		{"", []string{"TestA", "TestB"}, "^(TestA|TestB)$"},
		{"FullBoot", []string{"TestDebianKernelFullBoot"}, "^(TestDebianKernelFullBoot)$"},
		{"Boot", []string{"TestFullBoot"}, "^(TestFullBoot)$"},
		{"FullBoot/sha256", []string{"TestFullBoot"}, "^(TestFullBoot)$/sha256"},
		{"FullBoot/a/b", []string{"TestFullBoot"}, "^(TestFullBoot)$/a/b"},
		{"Full/a|Early/b", []string{"TestFullBoot"}, "^(TestFullBoot)$/a"},
		{"Full|Linux", []string{"TestFullBoot", "TestLinux"}, "^(TestFullBoot)$|^(TestLinux)$"},
		{"(Full|Linux)/x", []string{"TestFullBoot", "TestLinux"}, "^(TestFullBoot|TestLinux)$/x"},
		{"Test/x|Test/y", []string{"TestA"}, "^(TestA)$/x|^(TestA)$/y"},
		{"A b", []string{"TestA_b"}, "^(TestA_b)$"},
		// Top-level names are identifiers, but whatever a name holds is
		// quoted.
		{"", []string{"TestA.b", "Test(x)|y"}, `^(TestA\.b|Test\(x\)\|y)$`},
	}
	for _, tt := range tests {
		got, err := narrowPattern(tt.user, tt.names)
		if err != nil || got != tt.want {
			t.Errorf("narrowPattern(%q, %q) = %q, %v, want %q", tt.user, tt.names, got, err, tt.want)
			continue
		}
		// As package testing reads it, the result's top level selects
		// each name and nothing longer.
		for _, n := range tt.names {
			if !topMatches(got, n) {
				t.Errorf("narrowPattern(%q, %q) = %q, which does not select %s", tt.user, tt.names, got, n)
			}
			if topMatches(got, n+"X") {
				t.Errorf("narrowPattern(%q, %q) = %q, which selects %sX too", tt.user, tt.names, got, n)
			}
		}
	}
	for _, tt := range []struct{ user, name string }{{"(", "TestA"}, {"Early", "TestFullBoot"}} {
		if got, err := narrowPattern(tt.user, []string{tt.name}); err == nil {
			t.Errorf("narrowPattern(%q, %s) = %q, nil, want an error", tt.user, tt.name, got)
		}
	}
}

// topMatches says whether a top-level test called name runs under the
// -test.run pattern p.
func topMatches(p, name string) bool {
	for _, alt := range splitPattern(p, '|') {
		if regexp.MustCompile(splitPattern(alt, '/')[0]).MatchString(name) {
			return true
		}
	}
	return false
}

func TestVMPassArgs(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		deferred []string
		hostTook time.Duration
		want     []string
	}{
		{
			"go test's flags",
			[]string{"-test.paniconexit0", "-test.timeout=10m0s", "-test.count=1", "-test.v=true"},
			[]string{"TestDebianKernelFullBoot"}, 90 * time.Second,
			[]string{"-test.run=^(TestDebianKernelFullBoot)$", "-test.timeout=8m30s", "-test.paniconexit0", "-test.count=1", "-test.v=true"},
		},
		{
			"user's -run, -skip and -shuffle",
			[]string{"-test.run=Boot/sha", "-test.skip=Slow", "-test.shuffle=42", "-test.count=3"},
			[]string{"TestFullBoot"}, time.Second,
			[]string{"-test.run=^(TestFullBoot)$/sha", "-test.skip=Slow", "-test.shuffle=42", "-test.count=3"},
		},
		{
			"no timeout",
			[]string{"-test.run", "A|B", "-test.timeout=0s"},
			[]string{"TestA", "TestB"}, time.Hour,
			[]string{"-test.run=^(TestA)$|^(TestB)$", "-test.timeout=0s"},
		},
		{
			"benchmarks not deferred are not run again",
			[]string{"-test.bench=.", "-test.benchtime=1x", "-test.run=^$|Linux"},
			[]string{"TestLinux"}, 0,
			[]string{"-test.run=^(TestLinux)$", "-test.benchtime=1x"},
		},
		{
			"a deferred benchmark",
			[]string{"-test.bench=Boot", "-test.run=^$"},
			[]string{"BenchmarkBoot"}, 0,
			[]string{"-test.run=^$", "-test.bench=^(BenchmarkBoot)$"},
		},
		{
			"arguments after --",
			[]string{"-test.v=true", "--", "-test.run=X"},
			[]string{"TestA"}, 0,
			[]string{"-test.run=^(TestA)$", "-test.v=true", "--", "-test.run=X"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vmPassArgs(tt.args, tt.deferred, tt.hostTook)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("vmPassArgs(%q, %q, %v) = %q, %v, want %q", tt.args, tt.deferred, tt.hostTook, got, err, tt.want)
			}
		})
	}
	for _, args := range [][]string{
		{"-test.timeout=1m"}, // the host pass took it all
		{"-test.run=Early"},  // cannot have run the deferred test
		{"-test.run=("},      // a bad pattern
	} {
		if got, err := vmPassArgs(args, []string{"TestLinux"}, 2*time.Minute); err == nil {
			t.Errorf("vmPassArgs(%q, [TestLinux], 2m) = %q, nil, want an error", args, got)
		}
	}
}
