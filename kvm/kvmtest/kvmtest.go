// Package kvmtest is the one place tests ask whether they can use KVM.
//
// A test that needs /dev/kvm calls Require first. Without KVM it skips with
// the reason, except when GOVMM_REQUIRE_KVM=1 (set by `make test` and CI),
// where it fails: a green CI run means the guests really ran.
// GOVMM_SKIP_KVM=1 skips such tests on purpose (`make unit`).
package kvmtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/govmm/govmm/kvm"
)

// Path is the KVM device tests use: $GOVMM_KVM, else /dev/kvm.
func Path() string {
	if p := os.Getenv("GOVMM_KVM"); p != "" {
		return p
	}
	return "/dev/kvm"
}

// Require skips or fails t unless KVM can be opened, and returns the kind
// of host it is.
func Require(t testing.TB) kvm.HostKind {
	t.Helper()
	if os.Getenv("GOVMM_SKIP_KVM") == "1" {
		t.Skip("GOVMM_SKIP_KVM=1: tests that run guests are skipped")
	}
	sys, err := kvm.Open(Path())
	if err == nil {
		err = kvm.CheckAPI(sys)
		if cerr := sys.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatalf("GOVMM_REQUIRE_KVM=1 but KVM is unusable: %v", err)
		}
		t.Skipf("needs KVM: %v (set GOVMM_REQUIRE_KVM=1 to make this a failure)", err)
	}
	return kvm.DetectHost(os.DirFS("/"))
}

// CacheDir is where tests keep built fixtures: $GOVMM_CACHE, else a folder
// in the system's temporary directory shared by test runs.
func CacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "govmm-test-cache")
}

// Emulated reports whether this KVM is testvm's: nested inside a machine
// that QEMU emulates in software (GOVMM_IN_TESTVM=1, set by testvm's /init).
// Everything runs there, slowly; a test whose guest is known to stall
// there says so and skips.
func Emulated() bool { return os.Getenv("GOVMM_IN_TESTVM") == "1" }
