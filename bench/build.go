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
	h := sha256.New()
	fmt.Fprintf(h, "%q\n%s\n", cvmmFlags, gccVersion)
	h.Write(cvmmSource)
	dir := filepath.Join(cacheDir, "cvmm-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "cvmm")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	src := filepath.Join(dir, "cvmm.c")
	if err := os.WriteFile(src, cvmmSource, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", src, err)
	}
	tmp := bin + ".tmp"
	args := append(append([]string{}, cvmmFlags...), "-o", tmp, src)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc %s: %w\n%s(a static build needs libc.a: apt-get install libc6-dev)", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("move cvmm into place: %w", err)
	}
	return bin, nil
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
