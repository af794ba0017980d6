package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/govmm/govmm/images"
)

func TestParseArgs(t *testing.T) {
	t.Setenv("GOVMM_CACHE", "/c")
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr bool
	}{
		{"defaults", []string{"--", "/bin/prog", "-x"}, options{cache: "/c", argv: []string{"/bin/prog", "-x"}}, false},
		{"all flags", []string{"-mem", "2G", "-cpus", "1", "-file", "/k", "-file", "/i", "-cache", "/d", "--", "/p", "-kernel", "/k"},
			options{mem: 2 << 30, cpus: 1, cache: "/d", files: []string{"/k", "/i"}, argv: []string{"/p", "-kernel", "/k"}}, false},
		{"copy args", []string{"-copy-args", "/p", "-initrd", "my.cpio"}, options{cache: "/c", copyArgs: true, argv: []string{"/p", "-initrd", "my.cpio"}}, false},
		{"no program", []string{"-file", "/k"}, options{}, true},
		{"bad mem", []string{"-mem", "lots", "/p"}, options{}, true},
		{"negative cpus", []string{"-cpus", "-1", "/p"}, options{}, true},
	}
	for _, tt := range tests {
		got, err := parseArgs(tt.args, io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseArgs(%s) error = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && (got.mem != tt.want.mem || got.cpus != tt.want.cpus || got.cache != tt.want.cache || got.copyArgs != tt.want.copyArgs ||
			!slices.Equal(got.files, tt.want.files) || !slices.Equal(got.argv, tt.want.argv)) {
			t.Errorf("parseArgs(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"512M", 512 << 20}, {"4G", 4 << 30}, {"2048", 2048 << 20}, {"65536k", 64 << 20},
		{"", 0}, {"G", 0}, {"-1G", 0}, {"0", 0}, {"1.5G", 0},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if got != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("parseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestWorkDir(t *testing.T) {
	tests := []struct {
		wd    string
		files []string
		want  string
	}{
		{"/work/main", []string{"/work/main/bin/govmm", "/cache/k"}, "/work/main"},
		{"/work/main", []string{"/work/main"}, "/work/main"},
		{"/work/main", []string{"/work/mainly/x", "/work/x"}, "/"},
		{"/home", nil, "/"},
	}
	for _, tt := range tests {
		if got := workDir(tt.wd, tt.files); got != tt.want {
			t.Errorf("workDir(%s, %v) = %s, want %s", tt.wd, tt.files, got, tt.want)
		}
	}
}

// TestRunNonInteractive runs busybox in the VM as CI would (standard input
// not a terminal), with -copy-args and a relative path: the output streams
// to stdout with plain line ends and the exit status comes back.
func TestRunNonInteractive(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG: skipped with -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	cache := cachedKernel(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "data.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	var stdout, stderr bytes.Buffer
	args := []string{"-cache", cache, "-copy-args", "--", "/bin/busybox", "sh", "-c", `cat "$0"; pwd; exit 5`, "data.txt"}
	rc, err := run(context.Background(), args, false, &stdout, &stderr)
	if want := "from the host\n" + wd + "\n"; rc != 5 || err != nil || stdout.String() != want {
		t.Errorf("run(%q) = %d, %v with output %q, want 5, nil, %q\nstderr:\n%s", args, rc, err, stdout.String(), want, stderr.String())
	}
	if !strings.Contains(stderr.String(), "copying into the VM: "+filepath.Join(wd, "data.txt")) {
		t.Errorf("stderr = %q, want it to name the copied file", stderr.String())
	}
}

// cachedKernel returns the fixture cache ($GOVMM_CACHE, else the
// repository's .cache) when it holds Debian's kernel, and skips otherwise:
// this test never downloads one.
func cachedKernel(t *testing.T) string {
	t.Helper()
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
	if pkg, err := images.ResolveDebianKernel(context.Background()); err == nil {
		if _, err := os.Stat(filepath.Join(cache, "debian-kernel", pkg.Version)); err != nil {
			t.Skipf("Debian kernel %s is not in %s: run `make images` (or set GOVMM_CACHE)", pkg.Version, cache)
		}
	} else if m, _ := filepath.Glob(filepath.Join(cache, "debian-kernel", "*", "boot", "vmlinuz-*")); len(m) == 0 {
		t.Skipf("no Debian kernel in %s: run `make images` (or set GOVMM_CACHE)", cache)
	}
	abs, err := filepath.Abs(cache)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
