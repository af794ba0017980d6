package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/govmm/govmm/kvm"
)

// deferLinuxEnv is kvmtest.DeferLinuxEnv (this command does not link the
// testing package, which kvmtest imports; a test checks they agree).
const deferLinuxEnv = "GOVMM_DEFER_LINUX_TESTS"

// forwardedSignals are passed on to the host pass's test binary: go test
// sends SIGQUIT when its -timeout runs out (the binary then prints its
// goroutines), a terminal or a CI runner SIGINT or SIGTERM.
var forwardedSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT}

// vmRunner runs a test binary with its arguments inside testvm and returns
// its exit status: runInVM, or a stand-in in tests.
type vmRunner func(ctx context.Context, args []string, stdout io.Writer) (int, error)

// splitRun runs the test binary args[0] on a host whose KVM works but
// cannot boot Linux to user space (PVM). First it runs here, with
// GOVMM_REQUIRE_KVM=1 and deferLinuxEnv naming a fresh file, in which
// kvmtest.RequireLinux lists the top-level tests it skipped; then, if the
// file lists any, it runs exactly those (with the user's other flags)
// inside testvm through inVM. Both passes write to stdout, one after the
// other. sigs are passed on to the host pass. It returns the host pass's
// status if that failed, else the VM pass's.
func splitRun(ctx context.Context, args []string, host kvm.HostKind, sigs <-chan os.Signal, stdout, stderr io.Writer, inVM vmRunner) (int, error) {
	list, err := os.CreateTemp("", "govmm-defer-linux-*.txt")
	if err != nil {
		return 1, fmt.Errorf("create the list of deferred tests (check TMPDIR): %w", err)
	}
	defer os.Remove(list.Name())
	if err := list.Close(); err != nil {
		return 1, err
	}
	env := setEnv(os.Environ(), "GOVMM_REQUIRE_KVM=1", deferLinuxEnv+"="+list.Name())
	start := time.Now()
	hostStatus, err := runChild(args, env, sigs, stdout, stderr)
	if err != nil {
		return 1, err
	}
	took := time.Since(start)
	deferred, err := readDeferred(list.Name())
	if err != nil || len(deferred) == 0 {
		return passStatus(hostStatus, 0), err
	}
	names := strings.Join(deferred, ", ")
	if ctx.Err() != nil {
		return passStatus(hostStatus, 1), fmt.Errorf("stopped by a signal before %s could run in the emulated machine", names)
	}
	if hostStatus != 0 && failFast(args[1:]) {
		fmt.Fprintf(stderr, "testvm-exec: -test.failfast and the host pass failed: %s not run in the emulated machine\n", names)
		return passStatus(hostStatus, 0), nil
	}
	vmArgs, err := vmPassArgs(args[1:], deferred, took)
	if err != nil {
		return passStatus(hostStatus, 1), err
	}
	verb, they := "boot", "they run"
	if len(deferred) == 1 {
		verb, they = "boots", "it runs"
	}
	fmt.Fprintf(stderr, "testvm-exec: %s: %s %s Linux to user space, which this %v host's KVM cannot (no vmx or svm: guest ring 0 is emulated), so %s next inside an emulated AMD SVM machine (QEMU TCG) with nested KVM\n", args[0], names, verb, host, they)
	vmStatus, err := inVM(ctx, append([]string{args[0]}, vmArgs...), stdout)
	return passStatus(hostStatus, vmStatus), err
}

// runChild runs args with env as a child process, passing on each signal
// from sigs to it, and returns its exit status (128+n when signal n ended
// it, as shells say). The child is killed if this process dies first.
func runChild(args, env []string, sigs <-chan os.Signal, stdout, stderr io.Writer) (int, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("run %s: %w", args[0], err)
	}
	done := make(chan struct{})
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case s := <-sigs:
				// An error means the child has exited already.
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-forwarded
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return 1, fmt.Errorf("run %s: %w", args[0], err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return cmd.ProcessState.ExitCode(), nil
}

// readDeferred returns the top-level test names listed in the file at path,
// one a line, each once, in the order first listed. A missing or empty file
// lists none.
func readDeferred(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the list of deferred tests: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		name := strings.TrimSpace(line)
		if name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names, nil
}

// passStatus combines the two passes' exit statuses: the host pass's if it
// failed, else the VM pass's. A negative status (unknown) becomes 1.
func passStatus(host, vm int) int {
	for _, s := range []int{host, vm} {
		switch {
		case s < 0:
			return 1
		case s > 0:
			return s
		}
	}
	return 0
}

// setEnv returns env with each NAME=value of vars set, replacing any
// earlier value of NAME.
func setEnv(env []string, vars ...string) []string {
	out := make([]string, 0, len(env)+len(vars))
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		keep := true
		for _, v := range vars {
			if n, _, _ := strings.Cut(v, "="); n == name {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return append(out, vars...)
}
