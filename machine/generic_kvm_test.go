package machine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// GenericKernelEnv names a Debian generic kernel (a bzImage) for the tests
// that need one; otherwise they use one fetched earlier into the cache, or
// fetch it with GOVMM_FETCH=1.
const GenericKernelEnv = "GOVMM_GENERIC_KERNEL"

// genericKernel finds Debian 12's generic kernel, linux-image-amd64: its
// payload is xz with the x86 BCJ filter, unlike the cloud kernel's lz4.
// It is the cloud kernel's build of the same version, so its package is
// the cloud package's name without "cloud-". The download is about 70 MB,
// so the test fetches it only when asked (GOVMM_FETCH=1), into
// <cache>/generic-kernel/, where later runs find it.
func genericKernel(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(GenericKernelEnv); p != "" {
		return p
	}
	dir := filepath.Join(kvmtest.CacheDir(), "generic-kernel")
	if found, _ := filepath.Glob(filepath.Join(dir, "debian-kernel", "*", "boot", "vmlinuz-*-amd64")); len(found) > 0 {
		return found[len(found)-1]
	}
	if os.Getenv("GOVMM_FETCH") != "1" {
		t.Skipf("no Debian generic kernel in %s: set GOVMM_FETCH=1 to download linux-image-amd64 (~70 MB, once) or %s=<bzImage>", dir, GenericKernelEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cloud, err := images.ResolveDebianKernel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pkg := images.DebianPackage{Name: strings.Replace(cloud.Name, "-cloud-amd64", "-amd64", 1), Version: cloud.Version}
	k, err := images.FetchDebianKernel(ctx, dir, pkg, testLog{t})
	if err != nil {
		t.Fatalf("fetching %s=%s: %v", pkg.Name, pkg.Version, err)
	}
	return k.Vmlinuz
}

// TestDebianGenericKernelEarlyBoot boots Debian's generic kernel by the
// fast path, which decodes its xz payload and the x86 BCJ filter in govmm,
// and checks the banner, the command line and govmm's e820 map within the
// cloud kernel's budget.
func TestDebianGenericKernelEarlyBoot(t *testing.T) {
	host := kvmtest.Require(t)
	kernel := readFile(t, genericKernel(t))
	bz, err := boot.ParseBzImage(kernel)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := bz.Payload(); err != nil || boot.DetectFormat(p) != boot.FormatXZ {
		t.Fatalf("the generic kernel's payload is not xz (%v): this test is about xz with BCJ", err)
	}
	const mem = 256 << 20
	cmdline := fmt.Sprintf("console=ttyS0 earlyprintk=serial reboot=k panic=-1 govmm.test=%d", time.Now().UnixNano())
	e820 := []string{
		"BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
		"BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved",
		"BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable",
		"BIOS-e820: [mem 0x00000000e0000000-0x00000000efffffff] reserved",
	}
	wanted := append([]string{"Linux version", "Command line: "}, e820...)
	w := newWatcher(wanted...)
	start := time.Now()
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: kernel, Cmdline: cmdline, MemSize: mem, CPUs: 1, Boot: BootFast, CacheDir: kvmtest.CacheDir(), SerialOut: w, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Loaded.Path != "fast" {
		t.Fatalf("the generic kernel took the %s path, want fast", m.Loaded.Path)
	}
	t.Logf("fast path ready after %v (cache hit: %v)", time.Since(start).Round(time.Millisecond), m.Loaded.CacheHit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx)
		done <- err
	}()
	deadline := time.After(earlyBootBudget(host))
	for _, want := range wanted {
		select {
		case <-w.seen(want):
		case err := <-done:
			cancel()
			t.Fatalf("guest stopped (%v) before printing %q:\n%s", err, want, w.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no %q within %v on a %v host:\n%s", want, earlyBootBudget(host), host, w.String())
		}
	}
	t.Logf("the generic kernel printed its banner, command line and e820 map %v after start (%v host)", time.Since(start).Round(time.Millisecond), host)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
	if want := "Command line: " + m.Loaded.Cmdline + "\n"; !strings.Contains(w.String(), want) {
		t.Errorf("kernel did not print %q:\n%s", want, w.String())
	}
}
