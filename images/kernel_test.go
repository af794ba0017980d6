package images

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// aptShow is `apt-cache show --no-all-versions linux-image-cloud-amd64` on
// Debian 12 (bookworm-security, November 2026).
const aptShow = `Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Installed-Size: 13
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Provides: linux-latest-modules-6.1.0-56-cloud-amd64, virtualbox-guest-modules, wireguard-modules (= 1.0.0)
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description: Linux for x86-64 cloud (meta-package)
Filename: pool/updates/main/l/linux-signed-amd64/linux-image-cloud-amd64_6.1.192-2_amd64.deb

Package: linux-image-cloud-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)
`

func TestParseAptShow(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want DebianPackage
	}{
		{"bookworm", aptShow, DebianPackage{"linux-image-6.1.0-56-cloud-amd64", "6.1.192-2"}},
		{"several depends", "Package: x\nDepends: initramfs-tools, linux-image-6.1.0-9-cloud-amd64 (= 6.1.27-1)\n",
			DebianPackage{"linux-image-6.1.0-9-cloud-amd64", "6.1.27-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAptShow([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseAptShow() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseAptShow() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseAptShowErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"Package: linux-image-cloud-amd64\n",
		"Package: linux-image-cloud-amd64\nDepends: linux-image-6.1.0-56-cloud-amd64\n",
		// The Depends line of a second stanza does not count.
		"Package: a\n\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\n",
	} {
		if got, err := parseAptShow([]byte(in)); err == nil {
			t.Errorf("parseAptShow(%q) = %+v, want an error", in, got)
		}
	}
}

// fakeBzImage returns the first 1 KiB of a bzImage whose setup header
// carries version as its kernel_version string.
func fakeBzImage(version string) []byte {
	img := make([]byte, 0x400)
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(img[0x20e:], 0x100) // string at 0x300
	copy(img[0x300:], version+"\x00")
	return img
}

func TestBzImageRelease(t *testing.T) {
	debian := "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-10)"
	got, err := bzImageRelease(fakeBzImage(debian))
	if want := "6.1.0-56-cloud-amd64"; err != nil || got != want {
		t.Errorf("bzImageRelease(debian header) = %q, %v, want %q", got, err, want)
	}

	noMagic := fakeBzImage(debian)
	copy(noMagic[0x202:], "ELF!")
	oldProto := fakeBzImage(debian)
	binary.LittleEndian.PutUint16(oldProto[0x206:], 0x0104)
	farPtr := fakeBzImage(debian)
	binary.LittleEndian.PutUint16(farPtr[0x20e:], 0x300)
	for name, img := range map[string][]byte{
		"short":      make([]byte, 0x100),
		"no magic":   noMagic,
		"old proto":  oldProto,
		"far string": farPtr,
		"empty":      fakeBzImage(""),
	} {
		if got, err := bzImageRelease(img); err == nil {
			t.Errorf("bzImageRelease(%s) = %q, want an error", name, got)
		}
	}
}

func TestKernelFromPath(t *testing.T) {
	dir := t.TempDir()
	vmlinuz := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(vmlinuz, fakeBzImage("6.1.0-56-cloud-amd64 #1"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "lib", "modules", "6.1.0-56-cloud-amd64")
	other := filepath.Join(dir, "lib", "modules", "6.6.0")
	for _, d := range []string{good, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	got, err := KernelFromPath(vmlinuz, good)
	want := KernelInfo{Release: "6.1.0-56-cloud-amd64", Vmlinuz: vmlinuz, ModulesDir: good}
	if err != nil || got != want {
		t.Errorf("KernelFromPath(vmlinuz, %s) = %+v, %v, want %+v", good, got, err, want)
	}
	for _, tt := range []struct{ vmlinuz, modules string }{
		{filepath.Join(dir, "missing"), ""},
		{vmlinuz, other},
		{vmlinuz, filepath.Join(dir, "nowhere")},
	} {
		if got, err := KernelFromPath(tt.vmlinuz, tt.modules); err == nil {
			t.Errorf("KernelFromPath(%s, %s) = %+v, want an error", tt.vmlinuz, tt.modules, got)
		}
	}
}

// testCacheDir is the repository's git-ignored fixture cache.
func testCacheDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, ".cache")
}

// debianKernelForTest returns Debian's cloud kernel from the repository
// cache, fetching it only when GOVMM_FETCH=1; otherwise it skips the test.
func debianKernelForTest(t *testing.T) KernelInfo {
	t.Helper()
	k, why := cachedDebianKernel(t)
	if why != "" {
		t.Skip(why)
	}
	return k
}

// cachedDebianKernel returns Debian's cloud kernel from the repository
// cache, fetching it only when GOVMM_FETCH=1, or says why it cannot.
func cachedDebianKernel(t *testing.T) (k KernelInfo, whyNot string) {
	t.Helper()
	if _, err := exec.LookPath("apt-cache"); err != nil {
		return KernelInfo{}, "no apt-cache: not a Debian host"
	}
	ctx := context.Background()
	pkg, err := ResolveDebianKernel(ctx)
	if err != nil {
		return KernelInfo{}, fmt.Sprintf("cannot resolve the Debian kernel: %v", err)
	}
	cache := testCacheDir(t)
	if _, err := os.Stat(filepath.Join(cache, "debian-kernel", pkg.Version)); err != nil && os.Getenv("GOVMM_FETCH") != "1" {
		return KernelInfo{}, fmt.Sprintf("%s=%s is not in %s; run with GOVMM_FETCH=1 (or `make images`) to fetch it", pkg.Name, pkg.Version, cache)
	}
	var log strings.Builder
	k, err = DebianKernel(ctx, cache, &log)
	if err != nil {
		t.Fatalf("DebianKernel() error: %v\nlog:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), pkg.Name+"="+pkg.Version) {
		t.Errorf("DebianKernel() log = %q, want it to name %s=%s", log.String(), pkg.Name, pkg.Version)
	}
	return k, ""
}

func TestDebianKernel(t *testing.T) {
	k := debianKernelForTest(t)
	fromPath, err := KernelFromPath(k.Vmlinuz, k.ModulesDir)
	if err != nil {
		t.Fatalf("KernelFromPath(DebianKernel().Vmlinuz) error: %v", err)
	}
	if fromPath.Release != k.Release {
		t.Errorf("bzImage release = %q, want the package's %q", fromPath.Release, k.Release)
	}
	mods, err := CollectModules(k.ModulesDir, VirtioModules)
	if err != nil {
		t.Fatalf("CollectModules(%s, VirtioModules) error: %v", k.ModulesDir, err)
	}
	if len(mods) < len(VirtioModules) {
		t.Errorf("CollectModules() = %d modules, want at least %d", len(mods), len(VirtioModules))
	}
	for _, m := range mods {
		info, err := ModInfo(m.Data)
		if err != nil {
			t.Errorf("ModInfo(%s) error: %v", m.Path, err)
			continue
		}
		if !strings.HasPrefix(info["vermagic"], k.Release+" ") {
			t.Errorf("ModInfo(%s)[vermagic] = %q, want it to start with %q", m.Path, info["vermagic"], k.Release)
		}
	}
}
