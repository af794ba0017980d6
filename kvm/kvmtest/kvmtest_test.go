package kvmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skip and Fatal record the message and end
// the goroutine, as the real ones do, without ending the test.
type recorder struct {
	testing.TB
	name    string
	skipped string
	fatal   string
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return r.name }
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// call runs f(r) on a goroutine of its own, which Skip and Fatal end.
func (r *recorder) call(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// TestRequireLinux checks RequireLinux's three answers on a host whose KVM
// cannot boot Linux to user space: with DeferLinuxEnv, the top-level name
// in the file and a skip; else under GOVMM_REQUIRE_KVM=1 a failure; else a
// skip. On hardware hosts (and inside testvm) there is nothing to check.
func TestRequireLinux(t *testing.T) {
	if host := Require(t); host.Hardware() {
		t.Skipf("this %v host runs full Linux guests: RequireLinux returns at once", host)
	}
	list := filepath.Join(t.TempDir(), "deferred")
	tests := []struct {
		name, deferEnv, requireEnv string
		wantFile                   string // "" for no file
		wantSkip, wantFatal        string // parts of the messages; "" for none
	}{
		{"deferred", list, "1", "TestFullBoot\n", "testvm-exec runs it in the emulated machine next", ""},
		{"required", "", "1", "", "", "run it through testvm-exec (make test)"},
		{"neither", "", "", "", "needs hardware virtualization", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(list)
			t.Setenv(DeferLinuxEnv, tt.deferEnv)
			t.Setenv("GOVMM_REQUIRE_KVM", tt.requireEnv)
			r := &recorder{TB: t, name: "TestFullBoot/sub/case"}
			r.call(func(tb testing.TB) { RequireLinux(tb) })
			if !contains(r.skipped, tt.wantSkip) || !contains(r.fatal, tt.wantFatal) {
				t.Errorf("RequireLinux() skipped %q, failed %q, want the skip %q, the failure %q", r.skipped, r.fatal, tt.wantSkip, tt.wantFatal)
			}
			got, err := os.ReadFile(list)
			if tt.wantFile == "" && err == nil || tt.wantFile != "" && string(got) != tt.wantFile {
				t.Errorf("RequireLinux() left %q (%v) in %s, want %q", got, err, DeferLinuxEnv, tt.wantFile)
			}
		})
	}
}

// TestUnavailable checks Unavailable's three answers: a failure under
// GOVMM_REQUIRE_KVM=1, a skip there inside testvm's emulated machine, and
// a skip without it.
func TestUnavailable(t *testing.T) {
	tests := []struct {
		name, requireEnv    string
		emulated            bool
		wantSkip, wantFatal string
	}{
		{"required", "1", false, "", "GOVMM_REQUIRE_KVM=1 but no gcc"},
		{"required, in testvm", "1", true, "no gcc: this is testvm's emulated machine", ""},
		{"not required", "", false, "no gcc (set GOVMM_REQUIRE_KVM=1", ""},
	}
	defer func(f func() bool) { inEmulatedMachine = f }(inEmulatedMachine)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOVMM_REQUIRE_KVM", tt.requireEnv)
			inEmulatedMachine = func() bool { return tt.emulated }
			r := &recorder{TB: t, name: "TestLayout"}
			r.call(func(tb testing.TB) { Unavailable(tb, "no gcc") })
			if !contains(r.skipped, tt.wantSkip) || !contains(r.fatal, tt.wantFatal) {
				t.Errorf("Unavailable(no gcc) skipped %q, failed %q, want the skip %q, the failure %q", r.skipped, r.fatal, tt.wantSkip, tt.wantFatal)
			}
		})
	}
}

// contains says whether s has part, and is empty when part is.
func contains(s, part string) bool {
	if part == "" {
		return s == ""
	}
	return strings.Contains(s, part)
}
