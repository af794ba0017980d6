package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/testvm"
)

// bootSlack is added to the test binary's own -test.timeout for building
// the initramfs and booting the VM.
const bootSlack = 3 * time.Minute

// runInVM runs the test binary args[0] with args[1:] inside a testvm VM, in
// the current directory, with its output to stdout, and returns its exit
// status.
func runInVM(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	binary, err := filepath.Abs(args[0])
	if err != nil {
		return 1, err
	}
	if err := testvm.CheckStatic(binary); err != nil {
		return 1, fmt.Errorf("%w (go test builds static test binaries with CGO_ENABLED=0 in its environment)", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return 1, fmt.Errorf("working directory: %w", err)
	}
	cache, err := filepath.Abs(cacheDir())
	if err != nil {
		return 1, err
	}
	var log bytes.Buffer
	c, err := testvm.Find(ctx, cache, &log)
	if err != nil {
		return 1, fmt.Errorf("%w\n%s", err, log.String())
	}
	cacheFiles, err := CacheFiles(cache)
	if err != nil {
		return 1, err
	}
	c.Files = append([]string{binary, wd}, cacheFiles...)
	c.Files = append(c.Files, filepath.SplitList(os.Getenv("GOVMM_TESTVM_FILES"))...)
	c.Dir = wd
	c.Argv = append([]string{binary}, args[1:]...)
	c.Env = guestEnv(os.Environ(), cache)
	c.Timeout = testTimeout(args[1:])
	c.Stdout = stdout
	if c.CPUs, err = envInt("GOVMM_TESTVM_CPUS", 0); err != nil {
		return 1, err
	}
	mem, err := envInt("GOVMM_TESTVM_MEM", 0)
	if err != nil {
		return 1, err
	}
	c.Mem = int64(mem) << 20
	c.SingleThreadTCG = os.Getenv("GOVMM_TESTVM_SINGLE_THREAD") == "1"
	return testvm.Run(ctx, c)
}

// CacheFiles picks what the tests in the VM need from the fixture cache:
// finished test-guest builds, and images.env (written by `make images`)
// with the kernel and initrd it names; without images.env, the built
// initrds and the kernels' bzImages. The kernels' module trees (~90 MiB)
// stay out: the initrds carry the modules they need.
func CacheFiles(cache string) ([]string, error) {
	done, err := filepath.Glob(filepath.Join(cache, "testguest-*", "done"))
	if err != nil {
		return nil, err
	}
	var files []string
	for _, d := range done {
		files = append(files, filepath.Dir(d))
	}
	env := imagesenv.Path(cache)
	if f, err := os.Open(env); err == nil {
		g, err := imagesenv.Read(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		files = append(files, env)
		for _, p := range g.Files() {
			if st, err := os.Stat(p); err == nil && filepath.IsAbs(p) && st.Mode().IsRegular() {
				files = append(files, p)
			}
		}
		return files, nil
	}
	for _, pattern := range []string{"initrd/*.cpio", "debian-kernel/*/boot/vmlinuz-*"} {
		m, err := filepath.Glob(filepath.Join(cache, pattern))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return files, nil
}

// guestEnv is the test's environment in the VM: govmm's own variables and
// the Go runtime's, with GOVMM_CACHE set to the host's cache path (the
// files keep their paths in the VM).
func guestEnv(host []string, cache string) []string {
	env := []string{"GOVMM_CACHE=" + cache}
	for _, e := range host {
		name, _, _ := strings.Cut(e, "=")
		switch {
		case name == "GOVMM_CACHE", name == deferLinuxEnv, strings.HasPrefix(name, "GOVMM_TESTVM"):
		case strings.HasPrefix(name, "GOVMM_"),
			name == "GODEBUG", name == "GOTRACEBACK", name == "GOMAXPROCS",
			name == "GOGC", name == "GOMEMLIMIT":
			env = append(env, e)
		}
	}
	return env
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a whole number", name, v)
	}
	return n, nil
}
