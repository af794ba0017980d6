// Package images makes what a default govmm guest boots: the kernel (Debian
// 12's cloud kernel, fetched with apt, or one the user gives) and an initrd
// built with u-root's library around the guest agent in images/agent.
package images

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DebianMetaPackage is the Debian 12 package that always depends on the
// newest cloud kernel.
const DebianMetaPackage = "linux-image-cloud-amd64"

// KernelInfo says where a kernel and its modules are.
type KernelInfo struct {
	Release    string // what uname -r says, and names /lib/modules/<Release>
	Package    string // the Debian package it came from; "" for a user's kernel
	Version    string // that package's version; "" for a user's kernel
	Vmlinuz    string // the bzImage
	ModulesDir string // its /lib/modules/<Release> directory; "" if none
}

// DebianPackage names one version of one Debian package.
type DebianPackage struct {
	Name    string // "linux-image-6.1.0-56-cloud-amd64"
	Version string // "6.1.192-2"
}

// DebianKernel finds the kernel package that DebianMetaPackage depends on in
// the local apt lists, and returns it from cacheDir, fetching it first if it
// is not there. It prints the pinned package and version to log.
func DebianKernel(ctx context.Context, cacheDir string, log io.Writer) (KernelInfo, error) {
	pkg, err := ResolveDebianKernel(ctx)
	if err != nil {
		return KernelInfo{}, err
	}
	fmt.Fprintf(log, "kernel: %s=%s (what %s depends on)\n", pkg.Name, pkg.Version, DebianMetaPackage)
	return FetchDebianKernel(ctx, cacheDir, pkg, log)
}

// DebianGenericKernel fetches Debian 12's generic kernel of the same build as
// the cloud kernel DebianKernel gives (linux-image-<abi>-amd64 instead of
// linux-image-<abi>-cloud-amd64, same version) into cacheDir/generic-kernel/:
// its bzImage payload is xz with the x86 BCJ filter, where the cloud
// kernel's is lz4, so the fast path's tests boot it. Both packages share a
// version, so it has a cache folder of its own.
func DebianGenericKernel(ctx context.Context, cacheDir string, log io.Writer) (KernelInfo, error) {
	pkg, err := genericPackage(ctx)
	if err != nil {
		return KernelInfo{}, err
	}
	fmt.Fprintf(log, "kernel: %s=%s (the generic build, for the fast path's xz+BCJ test)\n", pkg.Name, pkg.Version)
	return FetchDebianKernel(ctx, genericCache(cacheDir), pkg, log)
}

// CachedDebianGenericKernel returns the generic kernel DebianGenericKernel
// would give if it is already in cacheDir, and false otherwise; it never
// downloads.
func CachedDebianGenericKernel(ctx context.Context, cacheDir string) (KernelInfo, bool) {
	pkg, err := genericPackage(ctx)
	if err != nil {
		return KernelInfo{}, false
	}
	k, err := unpackedKernel(filepath.Join(genericCache(cacheDir), "debian-kernel", pkg.Version), pkg)
	return k, err == nil
}

func genericCache(cacheDir string) string { return filepath.Join(cacheDir, "generic-kernel") }

// genericPackage names the generic build of the cloud kernel apt pins.
func genericPackage(ctx context.Context) (DebianPackage, error) {
	cloud, err := ResolveDebianKernel(ctx)
	if err != nil {
		return DebianPackage{}, err
	}
	name, ok := strings.CutSuffix(cloud.Name, "-cloud-amd64")
	if !ok {
		return DebianPackage{}, fmt.Errorf("%s depends on %s, not a -cloud-amd64 package: cannot name its generic build", DebianMetaPackage, cloud.Name)
	}
	return DebianPackage{Name: name + "-amd64", Version: cloud.Version}, nil
}

// ResolveDebianKernel asks apt-cache which kernel package and version the
// candidate DebianMetaPackage depends on.
func ResolveDebianKernel(ctx context.Context) (DebianPackage, error) {
	out, err := runTool(ctx, "", "apt-cache", "show", "--no-all-versions", DebianMetaPackage)
	if err != nil {
		return DebianPackage{}, fmt.Errorf("find %s: run `apt-get update` first (and use a Debian 12 host), or give a kernel path: %w", DebianMetaPackage, err)
	}
	return parseAptShow(out)
}

// parseAptShow reads the first stanza of `apt-cache show` output for a
// meta-package and returns the package its Depends field pins:
// "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)".
func parseAptShow(out []byte) (DebianPackage, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // end of the first stanza
		}
		deps, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		for _, dep := range strings.Split(deps, ",") {
			name, rest, _ := strings.Cut(strings.TrimSpace(dep), " ")
			if !strings.HasPrefix(name, "linux-image-") {
				continue
			}
			ver, ok := strings.CutPrefix(strings.TrimSpace(rest), "(=")
			if !ok || !strings.HasSuffix(ver, ")") {
				return DebianPackage{}, fmt.Errorf("apt-cache: %s depends on %q without an exact version; pin a package version yourself", DebianMetaPackage, strings.TrimSpace(dep))
			}
			return DebianPackage{Name: name, Version: strings.TrimSpace(strings.TrimSuffix(ver, ")"))}, nil
		}
	}
	return DebianPackage{}, fmt.Errorf("apt-cache output has no \"Depends: linux-image-...\" line for %s: run `apt-get update` and check the package exists", DebianMetaPackage)
}

// FetchDebianKernel returns pkg unpacked under
// cacheDir/debian-kernel/<version>/, downloading it with `apt-get download`
// and unpacking it with `dpkg -x` if it is not there yet. The unpacked tree
// appears whole or not at all: it is built in a temporary directory and
// renamed into place.
func FetchDebianKernel(ctx context.Context, cacheDir string, pkg DebianPackage, log io.Writer) (KernelInfo, error) {
	if pkg.Name == "" || pkg.Version == "" || strings.ContainsAny(pkg.Version, "/ ") {
		return KernelInfo{}, fmt.Errorf("kernel package %q version %q: give both, as apt-cache shows them", pkg.Name, pkg.Version)
	}
	dir := filepath.Join(cacheDir, "debian-kernel", pkg.Version)
	if k, err := unpackedKernel(dir, pkg); err == nil {
		fmt.Fprintf(log, "kernel: cached in %s\n", dir)
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return KernelInfo{}, fmt.Errorf("%w (remove %s to fetch it again)", err, dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return KernelInfo{}, fmt.Errorf("create kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return KernelInfo{}, fmt.Errorf("create kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(log, "kernel: apt-get download %s=%s\n", pkg.Name, pkg.Version)
	if _, err := runTool(ctx, tmp, "apt-get", "download", pkg.Name+"="+pkg.Version); err != nil {
		return KernelInfo{}, fmt.Errorf("apt-get download failed: run `apt-get update` first: %w", err)
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil || len(debs) != 1 {
		return KernelInfo{}, fmt.Errorf("apt-get download left %d .deb files in %s, want 1: check apt's configuration", len(debs), tmp)
	}
	root := filepath.Join(tmp, "root")
	if _, err := runTool(ctx, tmp, "dpkg", "-x", debs[0], root); err != nil {
		return KernelInfo{}, fmt.Errorf("dpkg -x %s failed (is dpkg installed?): %w", filepath.Base(debs[0]), err)
	}
	if _, err := unpackedKernel(root, pkg); err != nil {
		return KernelInfo{}, fmt.Errorf("package %s is not a kernel package: %w", pkg.Name, err)
	}
	if err := os.Rename(root, dir); err != nil {
		return KernelInfo{}, fmt.Errorf("move kernel into the cache: %w", err)
	}
	fmt.Fprintf(log, "kernel: unpacked into %s\n", dir)
	return unpackedKernel(dir, pkg)
}

// unpackedKernel describes a kernel package unpacked at root. Its error wraps
// os.ErrNotExist when root is not there at all.
func unpackedKernel(root string, pkg DebianPackage) (KernelInfo, error) {
	if _, err := os.Stat(root); err != nil {
		return KernelInfo{}, fmt.Errorf("kernel not unpacked: %w", err)
	}
	release, ok := strings.CutPrefix(pkg.Name, "linux-image-")
	if !ok {
		return KernelInfo{}, fmt.Errorf("package %q: want a linux-image-<release> package", pkg.Name)
	}
	k := KernelInfo{
		Release:    release,
		Package:    pkg.Name,
		Version:    pkg.Version,
		Vmlinuz:    filepath.Join(root, "boot", "vmlinuz-"+release),
		ModulesDir: filepath.Join(root, "lib", "modules", release),
	}
	for _, p := range []string{k.Vmlinuz, k.ModulesDir} {
		if _, err := os.Stat(p); err != nil {
			// Not ErrNotExist for the caller: root exists but is incomplete.
			return KernelInfo{}, fmt.Errorf("unpacked kernel lacks %s: %v", p, err)
		}
	}
	return k, nil
}

// KernelFromPath describes a kernel the user gives: a bzImage and, optionally,
// its /lib/modules/<release> directory. The release is read from the bzImage
// header.
func KernelFromPath(vmlinuz, modulesDir string) (KernelInfo, error) {
	vmlinuz, err := filepath.Abs(vmlinuz)
	if err != nil {
		return KernelInfo{}, fmt.Errorf("kernel path: %w", err)
	}
	if modulesDir != "" {
		if modulesDir, err = filepath.Abs(modulesDir); err != nil {
			return KernelInfo{}, fmt.Errorf("kernel modules path: %w", err)
		}
	}
	f, err := os.Open(vmlinuz)
	if err != nil {
		return KernelInfo{}, fmt.Errorf("open kernel: give the path of a bzImage: %w", err)
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return KernelInfo{}, fmt.Errorf("read kernel %s: %w", vmlinuz, err)
	}
	release, err := bzImageRelease(head[:n])
	if err != nil {
		return KernelInfo{}, fmt.Errorf("kernel %s: %w", vmlinuz, err)
	}
	if modulesDir != "" {
		if st, err := os.Stat(modulesDir); err != nil || !st.IsDir() {
			return KernelInfo{}, fmt.Errorf("kernel modules directory %q: give the kernel's /lib/modules/<release> directory, or none: %v", modulesDir, err)
		}
		if base := filepath.Base(modulesDir); base != release {
			return KernelInfo{}, fmt.Errorf("modules directory %s is for release %q but the kernel is %q: give the modules of this kernel", modulesDir, base, release)
		}
	}
	return KernelInfo{Release: release, Vmlinuz: vmlinuz, ModulesDir: modulesDir}, nil
}

// bzImageRelease reads the kernel release from a bzImage's setup header
// (Documentation/arch/x86/boot.rst): the "HdrS" magic at 0x202, protocol
// version at 0x206 (kernel_version needs 2.00+), and at 0x20e the offset,
// minus 0x200, of a NUL-terminated string whose first word is the release.
func bzImageRelease(img []byte) (string, error) {
	const (
		magicOff   = 0x202
		versionOff = 0x206
		kverOff    = 0x20e
	)
	if len(img) < kverOff+2 || string(img[magicOff:magicOff+4]) != "HdrS" {
		return "", errors.New("no bzImage setup header (HdrS): give a bzImage (vmlinuz), not a vmlinux or compressed file")
	}
	if v := binary.LittleEndian.Uint16(img[versionOff:]); v < 0x200 {
		return "", fmt.Errorf("boot protocol %#x is older than 2.00: give a newer kernel", v)
	}
	ptr := binary.LittleEndian.Uint16(img[kverOff:])
	start := int(ptr) + 0x200
	if ptr == 0 || start >= len(img) {
		return "", fmt.Errorf("kernel_version offset %#x is outside the image header: give a kernel with a version string", ptr)
	}
	s := img[start:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	fields := strings.Fields(string(s))
	if len(fields) == 0 {
		return "", errors.New("empty kernel_version string: give a kernel with a version string")
	}
	return fields[0], nil
}

// runTool runs a host tool and returns its standard output; its error carries
// the tool's standard error.
func runTool(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return out, fmt.Errorf("%s %s: %s: %w", name, strings.Join(args, " "), msg, err)
	}
	return out, nil
}
