package machine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/images/testguest"
)

// TestLoadKernelCacheVerbose: with -v the fast path says when a cached
// vmlinux failed its hash check and was decompressed again, and warns
// (always) when the cache directory is not private.
func TestLoadKernelCacheVerbose(t *testing.T) {
	g := guests(t)
	image := readFile(t, g.BzImages[testguest.Gzip])
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{"damaged cache file", func(t *testing.T, dir string) {
			files, err := filepath.Glob(filepath.Join(dir, "*.vmlinux"))
			if err != nil || len(files) != 1 {
				t.Fatalf("cache files after a first load: %v, %v, want one", files, err)
			}
			b := readFile(t, files[0])
			b[len(b)-1] ^= 0xff
			if err := os.WriteFile(files[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "govmm: kernel cache: decompressed the kernel again, not using "},
		{"world-writable directory", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "govmm: warning: not using the kernel cache: " + "CACHE can be written by others"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			var log bytes.Buffer
			c := &Config{Kernel: image, Cmdline: "mode=check", MemSize: 64 << 20, CPUs: 1, Boot: BootFast, CacheDir: dir, Verbose: true, Log: &log}
			if _, err := loadKernel(ram(t, 64<<20), c, testHost, &log); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			log.Reset()
			l, err := loadKernel(ram(t, 64<<20), c, testHost, &log)
			if err != nil || l.Path != "fast" || l.CacheHit {
				t.Fatalf("loadKernel = %+v, %v, want the fast path without a cache hit", l, err)
			}
			if want := strings.ReplaceAll(tt.want, "CACHE", dir); !strings.Contains(log.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, log.String())
			}
		})
	}
}
