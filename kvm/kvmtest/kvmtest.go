// Package kvmtest is the one place tests ask whether they can use KVM.
//
// A test that needs /dev/kvm calls Require first. Without KVM it skips with
// the reason, except when GOVMM_REQUIRE_KVM=1 (set by `make test` and CI),
// where it fails: a green CI run means the guests really ran.
// GOVMM_SKIP_KVM=1 skips such tests on purpose (`make unit`). Unavailable
// applies the same rule to the other things a check needs from the machine,
// such as gcc and <linux/kvm.h>.
package kvmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	sys, err := kvm.Open(Path()) // which checks the API version
	if err == nil {
		err = sys.Close()
	}
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatalf("GOVMM_REQUIRE_KVM=1 but KVM is unusable: %v", err)
		}
		t.Skipf("needs KVM: %v (set GOVMM_REQUIRE_KVM=1 to make this a failure)", err)
	}
	return kvm.DetectHost(os.DirFS("/"))
}

// Unavailable ends t because something other than KVM that it needs from
// this machine is missing, such as a C compiler or a header; why says what
// and how to get it. Under GOVMM_REQUIRE_KVM=1 (make test, CI), where a
// green run must mean every check ran, t fails, except inside testvm's
// emulated machine, which holds busybox and the test binary alone: there
// it skips, since make test has run the same test on the host already
// (make unit, which runs every package natively). Otherwise t skips.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("GOVMM_REQUIRE_KVM") != "1" {
		t.Skipf("%s (set GOVMM_REQUIRE_KVM=1 to make this a failure)", why)
	}
	if inEmulatedMachine() {
		t.Skipf("%s: this is testvm's emulated machine, which has none; make unit checks it on the host", why)
	}
	t.Fatalf("GOVMM_REQUIRE_KVM=1 but %s", why)
}

// inEmulatedMachine says whether this is testvm's machine; tests replace it.
var inEmulatedMachine = SoftwareCPU

// CacheDir is where tests keep built fixtures: $GOVMM_CACHE, else a folder
// in the system's temporary directory shared by test runs.
func CacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "govmm-test-cache")
}

// DeferLinuxEnv names the file where a test binary's host run lists the
// tests it left for the emulated machine (see RequireLinux). testvm-exec
// sets it on hosts whose KVM cannot run Linux to user space, then runs the
// listed tests again inside testvm.
const DeferLinuxEnv = "GOVMM_DEFER_LINUX_TESTS"

// RequireLinux is Require for tests that boot a full Linux guest to user
// space. That needs hardware virtualization (vmx or svm, or testvm's nested
// SVM): on a PVM host a stock kernel never reaches user space. There, when
// testvm-exec has set DeferLinuxEnv, the test records its top-level name in
// that file and skips, and testvm-exec runs that whole top-level test again
// in the emulated machine (so call RequireLinux at the top of a top-level
// test, or its other subtests run twice); without DeferLinuxEnv the test
// fails under GOVMM_REQUIRE_KVM=1 and skips otherwise.
func RequireLinux(t testing.TB) kvm.HostKind {
	t.Helper()
	host := Require(t)
	if host.Hardware() {
		return host
	}
	why := fmt.Sprintf("a full Linux guest needs hardware virtualization (vmx or svm); this is a %v host, where a stock kernel stops before user space", host)
	if list := os.Getenv(DeferLinuxEnv); list != "" {
		name, _, _ := strings.Cut(t.Name(), "/")
		if err := appendLine(list, name); err != nil {
			t.Fatalf("%s: cannot leave %s for the emulated machine: %v", why, name, err)
		}
		t.Skipf("%s: testvm-exec runs it in the emulated machine next", why)
	}
	if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
		t.Fatalf("%s; run it through testvm-exec (make test) without GOVMM_TESTVM=never, which runs it in the emulated machine", why)
	}
	t.Skip(why)
	return host
}

// appendLine adds line to the file at path, creating it.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SoftwareCPU reports whether this machine's processor is QEMU's software
// emulation (TCG): testvm's machine, where KVM is nested. Its CPU differs
// from hardware in ways a few tests must allow for (it loads reserved
// MXCSR bits without a #GP, for one).
func SoftwareCPU() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	return err == nil && strings.Contains(string(b), "QEMU TCG CPU")
}
