package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as govmm. Every test that calls run gets a
// child process running govmm's real code, confined by seccomp and
// Landlock as a user's govmm is (both stay for the life of a process, so
// the test binary must not confine itself). The child reports run's
// error on descriptor 3.
const (
	asGovmmEnv = "GOVMM_TEST_AS_GOVMM" // "stdin" or "nostdin": run as govmm
	errFD      = 3
	// errFDEnv says descriptor 3 is the pipe to the test. Not a GOVMM_
	// variable: govmm jail passes those to the govmm it jails, where
	// descriptor 3 is something else.
	errFDEnv = "TEST_CHILD_ERROR_FD"
)

func TestMain(m *testing.M) {
	if how := os.Getenv(asGovmmEnv); how != "" {
		os.Exit(childMain(how))
	}
	runElsewhere = runChild
	errConfinedInTest = errors.New("a test would confine the test binary itself with seccomp or Landlock: call run, which runs govmm in a child process")
	os.Exit(m.Run())
}

// childMain is main for the child, with run's error sent to the parent.
func childMain(how string) int {
	ctx, stop := signalContext(context.Background())
	defer stop()
	stdin := os.Stdin
	if how == "nostdin" {
		stdin = nil
	}
	status, err := run(ctx, os.Args[1:], stdin, os.Stdout, os.Stderr)
	if err != nil && os.Getenv(errFDEnv) == strconv.Itoa(errFD) {
		msg := err.Error()
		if errors.Is(err, errUsage) {
			msg = "\x00usage"
		}
		f := os.NewFile(errFD, "run's error")
		if _, werr := io.WriteString(f, msg); werr != nil {
			fmt.Fprintln(os.Stderr, "govmm test child: reporting the error:", werr, "; the error:", msg)
		}
	}
	if err != nil {
		if os.Getenv(errFDEnv) == "" && !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "govmm:", err)
		}
		if status == 0 {
			status = 1
		}
	}
	return status
}

// runChild runs govmm's run in a child process: the same arguments, its
// output to stdout and stderr, SIGTERM when ctx ends. A child killed by a
// signal gives 128 plus its number, as a shell says.
func runChild(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	how := "stdin"
	if stdin == nil {
		how = "nostdin"
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), asGovmmEnv+"="+how, errFDEnv+"="+strconv.Itoa(errFD))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 1, err
	}
	msg, rerr := io.ReadAll(r)
	werr := cmd.Wait()
	if rerr != nil {
		return 1, rerr
	}
	status := 0
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee):
		status = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		}
	case werr != nil:
		return 1, werr
	}
	switch m := string(msg); {
	case m == "\x00usage":
		return status, errUsage
	case m != "":
		return status, errors.New(strings.TrimSuffix(m, "\n"))
	}
	return status, nil
}
