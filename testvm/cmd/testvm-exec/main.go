// Command testvm-exec is govmm's `go test -exec` wrapper: it runs a test
// binary where its KVM tests can run.
//
//	CGO_ENABLED=0 go test -exec "$PWD/bin/testvm-exec" ./...
//
// Where it runs depends on the host:
//
//   - hardware virtualization (vmx or svm, with kvm_intel or kvm_amd), or
//     a binary with no KVM tests (it does not link
//     github.com/govmm/govmm/kvm/kvmtest): here, as go test would run it;
//   - PVM (/dev/kvm works, but a stock Linux kernel never reaches user
//     space): here first, with GOVMM_REQUIRE_KVM=1 and
//     GOVMM_DEFER_LINUX_TESTS naming a file in which kvmtest.RequireLinux
//     lists the tests that boot Linux to user space, skipping them; then
//     those tests alone (-test.run narrowed to their names, every other
//     flag kept) inside the emulated machine below. The exit status is the
//     first failing pass's;
//   - no usable /dev/kvm: inside a QEMU-TCG VM with an emulated AMD SVM CPU
//     and nested KVM (package testvm), with the binary, the package
//     directory and the fixtures of $GOVMM_CACHE copied in; its exit status
//     is the test's.
//
// Environment: GOVMM_CACHE (fixture cache, default as kvmtest.CacheDir),
// GOVMM_KVM (as for kvmtest.Path);
// GOVMM_TESTVM=auto|always|never (always: everything in the VM; never:
// everything here, where tests that need Linux in user space fail or skip
// as kvmtest.RequireLinux says); GOVMM_TESTVM_FILES (more paths for the VM,
// colon-separated); GOVMM_TESTVM_CPUS, GOVMM_TESTVM_MEM (MiB);
// GOVMM_TESTVM_SINGLE_THREAD=1 (one host thread for all vCPUs).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/govmm/govmm/kvm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	rc, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testvm-exec: %v\n", err)
		if rc <= 0 {
			rc = 1
		}
	}
	stop()
	os.Exit(rc)
}

func run(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 2, fmt.Errorf("usage: testvm-exec /path/to/pkg.test [args...] (use it as go test -exec)")
	}
	host := kvm.DetectHost(os.DirFS("/"))
	where, why, err := choose(args[0], kvmPath(), host)
	if err != nil {
		return 1, err
	}
	switch where {
	case onHost:
		// Where KVM works, or the binary has no KVM tests, requiring KVM
		// costs nothing, and it turns a wrong guess into a failure instead
		// of a silent skip.
		return 1, execHost(args, why != forcedHost && why != skipKVM)
	case hostThenVM:
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, forwardedSignals...)
		defer signal.Stop(sigs)
		return splitRun(ctx, args, host, sigs, os.Stdout, os.Stderr, runInVM)
	}
	if why == kvmMissing {
		why += " (" + kvmPath() + ")"
	}
	fmt.Fprintf(os.Stderr, "testvm-exec: %s: %s, so the tests run inside an emulated AMD SVM machine (QEMU TCG) with nested KVM\n", args[0], why)
	return runInVM(ctx, args, os.Stdout)
}

// execHost replaces this process with the test binary; with requireKVM it
// sets GOVMM_REQUIRE_KVM=1, so KVM tests cannot skip.
func execHost(args []string, requireKVM bool) error {
	env := os.Environ()
	if requireKVM {
		env = setEnv(env, "GOVMM_REQUIRE_KVM=1")
	}
	err := syscall.Exec(args[0], args, env)
	return fmt.Errorf("run %s: %w", args[0], err)
}

// kvmPath and cacheDir answer as package kvmtest does for the tests (this
// command does not link the testing package): $GOVMM_KVM, else /dev/kvm;
// $GOVMM_CACHE, else govmm-test-cache in the temporary directory.
func kvmPath() string {
	if p := os.Getenv("GOVMM_KVM"); p != "" {
		return p
	}
	return "/dev/kvm"
}

func cacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "govmm-test-cache")
}
