package testvm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/images"
)

func TestModuleFile(t *testing.T) {
	modules := t.TempDir()
	cache := t.TempDir()
	if err := os.WriteFile(filepath.Join(modules, "plain.ko"), []byte("ELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := images.KernelInfo{Release: "6.1-test", ModulesDir: modules}
	if got, err := moduleFile(cache, k, images.Module{Name: "plain", Path: "plain.ko"}); err != nil || got != filepath.Join(modules, "plain.ko") {
		t.Errorf("moduleFile(uncompressed) = %s, %v, want the kernel's own file", got, err)
	}
	// A compressed module (plain.ko is absent: the tree has x.ko.xz) is
	// written out once, decompressed, into the cache.
	m := images.Module{Name: "x", Path: "x.ko", Data: []byte("decompressed")}
	got, err := moduleFile(cache, k, m)
	want := filepath.Join(cache, "testvm-modules", "6.1-test", "x.ko")
	if err != nil || got != want {
		t.Fatalf("moduleFile(compressed) = %s, %v, want %s", got, err, want)
	}
	if b, err := os.ReadFile(got); err != nil || string(b) != "decompressed" {
		t.Errorf("%s holds %q, %v, want the module's data", got, b, err)
	}
}

func TestCheckStatic(t *testing.T) {
	if err := CheckStatic(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("CheckStatic(missing) = nil, want an error")
	}
	if err := CheckStatic("/etc/hostname"); err == nil {
		t.Error("CheckStatic(/etc/hostname) = nil, want an error: not a program")
	}
	// /bin/sh is dynamic on a Debian host and static busybox in a testvm
	// VM: its bytes name the dynamic loader exactly when it is dynamic.
	b, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	dynamic := strings.Contains(string(b), "/lib64/ld-linux-x86-64.so.2")
	err = CheckStatic("/bin/sh")
	if dynamic != (err != nil) || err != nil && !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("CheckStatic(/bin/sh) = %v, want an error naming CGO_ENABLED=0 exactly when it is dynamic (%v)", err, dynamic)
	}
}
