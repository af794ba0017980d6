package kvm_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// headerABI builds testdata/kvmlayout.c with the host's gcc against its
// <linux/kvm.h>, runs it, and returns what it printed by key, with the
// header's Linux version. Without gcc or the header it hands t to
// kvmtest.Unavailable: skipped under plain go test, failed under
// GOVMM_REQUIRE_KVM=1.
func headerABI(t *testing.T) (map[string]uint64, string) {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		kvmtest.Unavailable(t, "no gcc to build testdata/kvmlayout.c against <linux/kvm.h>: install gcc (scripts/deps.sh)")
	}
	bin := filepath.Join(t.TempDir(), "kvmlayout")
	out, err := exec.Command(gcc, "-Wall", "-Wextra", "-Werror", "-o", bin, filepath.Join("testdata", "kvmlayout.c")).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("kvm.h: No such file")) || bytes.Contains(out, []byte("version.h: No such file")) {
			kvmtest.Unavailable(t, "no <linux/kvm.h> for testdata/kvmlayout.c: install linux-libc-dev (scripts/deps.sh)")
		}
		t.Fatalf("gcc testdata/kvmlayout.c: %v (a name missing from an older <linux/kvm.h> shows here)\n%s", err, out)
	}
	out, err = exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running kvmlayout: %v", err)
	}
	vals := map[string]uint64{}
	version := "unknown"
	s := bufio.NewScanner(bytes.NewReader(out))
	for s.Scan() {
		key, val, ok := strings.Cut(s.Text(), "\t")
		if !ok {
			t.Fatalf("kvmlayout printed %q, want KEY<TAB>VALUE", s.Text())
		}
		if key == "# LINUX_VERSION_CODE" {
			version = val
			continue
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			t.Fatalf("kvmlayout printed %q: %v", s.Text(), err)
		}
		if _, dup := vals[key]; dup {
			t.Fatalf("kvmlayout prints %s twice", key)
		}
		vals[key] = n
	}
	return vals, version
}

// TestABIMatchesHeader checks every struct size, field offset, struct
// kvm_run offset, ioctl number and constant package kvm mirrors
// (kvm.ABIValues) against the host's <linux/kvm.h>, as gcc compiles it
// from testdata/kvmlayout.c. A value on one side only fails too, so the C
// program and the Go list name the same things.
func TestABIMatchesHeader(t *testing.T) {
	header, version := headerABI(t)
	t.Logf("checked against <linux/kvm.h> of Linux %s: %d values", version, len(header))
	checked := map[string]bool{}
	for _, v := range kvm.ABIValues() {
		want, ok := header[v.Key]
		if !ok {
			t.Errorf("%s = %d in package kvm, but testdata/kvmlayout.c does not print it: add it there", v.Key, v.Go)
			continue
		}
		checked[v.Key] = true
		if v.Go != want {
			t.Errorf("%s = %d (%#x) in package kvm, want %d (%#x) as in <linux/kvm.h>", v.Key, v.Go, v.Go, want, want)
		}
	}
	for key := range header {
		if !checked[key] {
			t.Errorf("testdata/kvmlayout.c prints %s, which kvm.ABIValues lacks: add its Go value there", key)
		}
	}
}
