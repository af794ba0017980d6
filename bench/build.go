package main

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed cvmm/cvmm.c
var cvmmSource []byte

// cvmmFlags are gcc's flags for cvmm: optimized, and static so that the
// same binary runs inside testvm's machine, which has no libraries.
var cvmmFlags = []string{"-O2", "-static", "-Wall", "-Wextra", "-Werror"}

// buildCVMM compiles cvmm.c with gcc into cacheDir/cvmm-<hash>/cvmm, where
// the hash covers the source, the flags and the compiler's version, and
// returns its path. A finished build is reused.
func buildCVMM(cacheDir string) (string, error) {
	gccVersion, err := firstLine("gcc", "--version")
	if err != nil {
		return "", fmt.Errorf("gcc is needed to build the C peer (apt-get install gcc): %w", err)
	}
	key := append([]byte(fmt.Sprintf("%q\n%s\n", cvmmFlags, gccVersion)), cvmmSource...)
	dir, err := cachedBuild(cacheDir, "cvmm", key, []string{"cvmm"}, func(tmp string) error {
		src := filepath.Join(tmp, "cvmm.c")
		if err := os.WriteFile(src, cvmmSource, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", src, err)
		}
		return gccStatic(src, filepath.Join(tmp, "cvmm"))
	})
	return filepath.Join(dir, "cvmm"), err
}

// cachedBuild returns the folder cacheDir/name-<hash of key>, which build
// fills once (given a temporary folder that is then renamed into place,
// so that an interrupted build is never taken for a finished one) and
// which is reused while it holds every file of outs.
func cachedBuild(cacheDir, name string, key []byte, outs []string, build func(tmp string) error) (string, error) {
	sum := sha256.Sum256(key)
	dir := filepath.Join(cacheDir, name+"-"+hex.EncodeToString(sum[:])[:16])
	built := func() bool {
		for _, o := range outs {
			if _, err := os.Stat(filepath.Join(dir, o)); err != nil {
				return false
			}
		}
		return true
	}
	if built() {
		return dir, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", cacheDir, err)
	}
	tmp, err := os.MkdirTemp(cacheDir, name+"-build-")
	if err != nil {
		return "", fmt.Errorf("create a folder to build %s in: %w", name, err)
	}
	defer os.RemoveAll(tmp) // gone once renamed; what a failed build left otherwise
	if err := build(tmp); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil { // an unfinished earlier build
		return "", fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil && !built() { // else another build won
		return "", fmt.Errorf("move %s into place: %w", name, err)
	}
	return dir, nil
}

// gccStatic compiles the C file src into out with cvmm's flags (static,
// for testvm's machine, which has no libraries).
func gccStatic(src, out string) error {
	args := append(append([]string{}, cvmmFlags...), "-o", out, src)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("gcc %s: %w\n%s(a static build needs libc.a: apt-get install libc6-dev)", strings.Join(args, " "), err, b)
	}
	return nil
}

// buildStatic builds the Go package pkg of this module with cgo off, so
// that it runs in testvm's machine, into out.
func buildStatic(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s with CGO_ENABLED=0 (run the bench from the govmm checkout): %w\n%s", pkg, err, b)
	}
	return nil
}

// firstLine runs a program and returns the first line of its output.
func firstLine(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}
