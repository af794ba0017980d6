package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestChoose(t *testing.T) {
	plain := plainProgram(t)
	const notGo = "/bin/sh" // no .gopclntab: assumed to link everything
	devNull, noKVM := "/dev/null", filepath.Join(t.TempDir(), "kvm")
	tests := []struct {
		name    string
		binary  string
		env     map[string]string
		kvm     string
		host    kvm.HostKind
		want    place
		wantWhy string
	}{
		{"vmx", notGo, nil, devNull, kvm.HostVMX, onHost, kvmHardware},
		{"svm", notGo, nil, devNull, kvm.HostSVM, onHost, kvmHardware},
		{"pvm, Linux tests", notGo, nil, devNull, kvm.HostPVM, hostThenVM, kvmNoLinux},
		{"pvm, no Linux tests", plain, nil, devNull, kvm.HostPVM, onHost, noLinuxTests},
		{"unknown kvm, Linux tests", notGo, nil, devNull, kvm.HostUnknown, hostThenVM, kvmNoLinux},
		{"no kvm, no kvm tests", plain, nil, noKVM, kvm.HostUnknown, onHost, noKVMTests},
		{"no kvm, notGo", notGo, nil, noKVM, kvm.HostUnknown, inVM, kvmMissing},
		{"skip kvm", notGo, map[string]string{"GOVMM_SKIP_KVM": "1"}, noKVM, kvm.HostUnknown, onHost, skipKVM},
		{"skip kvm on pvm", notGo, map[string]string{"GOVMM_SKIP_KVM": "1"}, devNull, kvm.HostPVM, onHost, skipKVM},
		{"forced vm", plain, map[string]string{"GOVMM_TESTVM": "always"}, devNull, kvm.HostVMX, inVM, forcedVM},
		{"forced vm on pvm", notGo, map[string]string{"GOVMM_TESTVM": "always"}, devNull, kvm.HostPVM, inVM, forcedVM},
		{"forced host", notGo, map[string]string{"GOVMM_TESTVM": "never"}, noKVM, kvm.HostUnknown, onHost, forcedHost},
		{"forced host on pvm", notGo, map[string]string{"GOVMM_TESTVM": "never"}, devNull, kvm.HostPVM, onHost, forcedHost},
		{"auto", notGo, map[string]string{"GOVMM_TESTVM": "auto"}, devNull, kvm.HostPVM, hostThenVM, kvmNoLinux},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOVMM_TESTVM", "")
			t.Setenv("GOVMM_SKIP_KVM", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, why, err := choose(tt.binary, tt.kvm, tt.host)
			if err != nil || got != tt.want || why != tt.wantWhy {
				t.Errorf("choose(%s, %s, %v) = %v, %q, %v, want %v, %q", tt.binary, tt.kvm, tt.host, got, why, err, tt.want, tt.wantWhy)
			}
		})
	}
	t.Setenv("GOVMM_TESTVM", "maybe")
	if _, _, err := choose(notGo, noKVM, kvm.HostUnknown); err == nil {
		t.Error("choose(GOVMM_TESTVM=maybe) = nil error, want one")
	}
}

// plainProgram builds a Go program that does not link kvmtest.
func plainProgram(t *testing.T) string {
	t.Helper()
	return buildProgram(t, "package main\n\nfunc main() {}\n")
}

// programs holds the programs buildProgram has built, by source, in
// programDir; TestMain removes it.
var (
	programMu  sync.Mutex
	programs   = map[string]string{}
	programDir string
)

func TestMain(m *testing.M) {
	status := m.Run()
	if programDir != "" {
		os.RemoveAll(programDir)
	}
	os.Exit(status)
}

// buildProgram builds the Go program whose main.go is src, alone in its
// module, once per test run, and returns its path.
func buildProgram(t *testing.T, src string) string {
	t.Helper()
	programMu.Lock()
	defer programMu.Unlock()
	if p, ok := programs[src]; ok {
		return p
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	if programDir == "" {
		if programDir, err = os.MkdirTemp("", "testvm-exec-test-"); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp(programDir, "prog-")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": "module prog\n", "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goTool, "build", "-o", "prog", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	programs[src] = filepath.Join(dir, "prog")
	return programs[src]
}

func TestHasFunc(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		binary, prefix string
		want           bool
	}{
		{self, "github.com/govmm/govmm/testvm/cmd/testvm-exec.TestHasFunc", true},
		{self, "github.com/govmm/govmm/kvm/kvmtest.", false},
		{self, kvmFuncs[0], false},
		{self, requireLinuxFunc, false},
	}
	for _, tt := range tests {
		if got, err := hasFunc(tt.binary, tt.prefix); err != nil || got != tt.want {
			t.Errorf("hasFunc(%s, %s) = %v, %v, want %v", tt.binary, tt.prefix, got, err, tt.want)
		}
	}
	if _, err := hasFunc("/etc/hostname", "x"); err == nil {
		t.Error("hasFunc(/etc/hostname) = nil error, want one: not ELF")
	}
}

// TestPackageKVMLinksKVMFuncs builds package kvm's test binary, whose
// tests that need /dev/kvm ask kvmtest from an external test package:
// linksKVMTests must find them, or on hosts without /dev/kvm they would
// run on the host and skip instead of in the VM.
func TestPackageKVMLinksKVMFuncs(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	bin := filepath.Join(t.TempDir(), "kvm.test")
	cmd := exec.Command(goTool, "test", "-c", "-o", bin, "github.com/govmm/govmm/kvm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./kvm: %v\n%s", err, out)
	}
	if has, err := linksKVMTests(bin); err != nil || !has {
		t.Errorf("linksKVMTests(package kvm's test binary) = %v, %v, want true", has, err)
	}
}

func TestCacheFiles(t *testing.T) {
	cache := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(cache, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	done := mk("testguest-abc/done")
	mk("testguest-build-123/partial") // unfinished: left out
	mk("debian-kernel/1/lib/modules/r/kernel/kvm.ko")
	vmlinuz := mk("debian-kernel/1/boot/vmlinuz-r")
	initrd := mk("initrd/new.cpio")
	old := mk("initrd/old.cpio")

	got, err := CacheFiles(cache)
	want := []string{filepath.Dir(done), old, initrd, vmlinuz}
	slices.Sort(got)
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("CacheFiles(no images.env) = %v, %v, want %v", got, err, want)
	}

	env := filepath.Join(cache, "images.env")
	if err := os.WriteFile(env, []byte("kernel="+vmlinuz+"\nrelease=r\ninitrd="+initrd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = CacheFiles(cache)
	want = []string{filepath.Dir(done), env, vmlinuz, initrd}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("CacheFiles(images.env) = %v, %v, want %v", got, err, want)
	}
	if got, err := CacheFiles(filepath.Join(cache, "none")); err != nil || len(got) != 0 {
		t.Errorf("CacheFiles(missing) = %v, %v, want nothing", got, err)
	}
}

func TestGuestEnv(t *testing.T) {
	host := []string{"PATH=/usr/bin", "GOVMM_CACHE=/old", "GOVMM_FETCH=1", "GOVMM_TESTVM_CPUS=4", "GODEBUG=x=1", "HOME=/root", "GOFLAGS=-race", deferLinuxEnv + "=/tmp/list"}
	got := guestEnv(host, "/cache")
	want := []string{"GOVMM_CACHE=/cache", "GOVMM_FETCH=1", "GODEBUG=x=1"}
	if !slices.Equal(got, want) {
		t.Errorf("guestEnv() = %v, want %v", got, want)
	}
}
