package testvm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images"
)

// kvmProbe is a program for the VM: it opens /dev/kvm, prints what the
// test checks, and exits 7.
const kvmProbe = `package main

import (
	"fmt"
	"os"
)

func main() {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		fmt.Println("open /dev/kvm:", err)
		os.Exit(1)
	}
	f.Close()
	wd, _ := os.Getwd()
	data, _ := os.ReadFile("data.txt")
	fmt.Printf("kvm ok\nwd=%s\nenv=%s\nrequire=%s\ndata=%s\n", wd, os.Getenv("TESTVM_PROBE"), os.Getenv("GOVMM_REQUIRE_KVM"), data)
	os.Exit(7)
}
`

// vmConfig returns Find's Config, or skips when QEMU or a cached Debian
// kernel ($GOVMM_CACHE, else the repository's .cache) is missing: this test
// never downloads a kernel. It does not use kvmtest, so that testvm-exec
// runs this package's tests on the host.
func vmConfig(t *testing.T) Config {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	cache := os.Getenv("GOVMM_CACHE")
	if cache == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root, err := images.FindModuleRoot(wd)
		if err != nil {
			t.Skip(err)
		}
		cache = filepath.Join(root, ".cache")
	}
	ctx := context.Background()
	if pkg, err := images.ResolveDebianKernel(ctx); err == nil {
		if _, err := os.Stat(filepath.Join(cache, "debian-kernel", pkg.Version)); err != nil {
			t.Skipf("Debian kernel %s is not in %s: run `make images` (or set GOVMM_CACHE)", pkg.Version, cache)
		}
	} else if m, _ := filepath.Glob(filepath.Join(cache, "debian-kernel", "*", "boot", "vmlinuz-*")); len(m) == 0 {
		t.Skipf("no Debian kernel in %s: run `make images` (or set GOVMM_CACHE)", cache)
	}
	var log bytes.Buffer
	c, err := Find(ctx, cache, &log)
	if err != nil {
		t.Skipf("Find: %v\n%s", err, log.String())
	}
	return c
}

// TestRunKVMProbe boots the VM and runs a static Go program in it that
// opens /dev/kvm and exits 7.
func TestRunKVMProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG: skipped with -short")
	}
	c := vmConfig(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the probe program")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"go.mod": "module probe\n", "main.go": kvmProbe, "data.txt": "from the host",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "probe")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}

	var out bytes.Buffer
	c.Files = []string{bin, dir}
	c.Dir = dir
	c.Argv = []string{bin}
	c.Env = []string{"TESTVM_PROBE=it's passed"}
	c.Timeout = 3 * time.Minute
	c.Stdout = &out
	start := time.Now()
	rc, err := Run(context.Background(), c)
	t.Logf("Run took %v", time.Since(start))
	if err != nil || rc != 7 {
		t.Fatalf("Run(probe) = %d, %v, want 7, nil\noutput:\n%s", rc, err, out.String())
	}
	want := "kvm ok\nwd=" + dir + "\nenv=it's passed\nrequire=1\ndata=from the host\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("Run(probe) output = %q, want it to contain %q", out.String(), want)
	}
	if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), markerPrefix) {
		t.Errorf("Run(probe) output = %q, want no \\r and no exit marker", out.String())
	}
}
