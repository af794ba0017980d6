package testvm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	"github.com/govmm/govmm/images"
)

// KVMModules are the modules that give /dev/kvm in a VM with an AMD SVM CPU
// (QEMU's "max" CPU under TCG); their dependencies come along.
var KVMModules = []string{"kvm_amd"}

// DeviceModules are loaded with them: virtio-blk for Config.Drives, and
// TUN/TAP and veth for programs that make network devices (govmm -net
// tap). Debian's cloud kernel builds them as modules.
var DeviceModules = []string{"virtio_pci", "virtio_blk", "tun", "veth"}

// Find returns a Config with the host's pieces filled in: QEMU from PATH
// and its version, busybox at /bin/busybox, and Debian's cloud kernel with its KVM modules
// from cacheDir, fetched there with images.DebianKernel if missing. Where
// apt-cache cannot name the kernel (not a Debian host), a kernel already in
// cacheDir/debian-kernel is used. Progress goes to log.
func Find(ctx context.Context, cacheDir string, log io.Writer) (Config, error) {
	var c Config
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return c, fmt.Errorf("testvm: qemu-system-x86_64 not found: apt-get install --no-install-recommends qemu-system-x86: %w", err)
	}
	c.QEMU = qemu
	if c.QEMUVersion, err = queryQEMUVersion(ctx, qemu); err != nil {
		// Run treats the machine as one that needs the periodic tick.
		fmt.Fprintf(log, "%v; assuming an old QEMU\n", err)
	}
	c.Busybox = "/bin/busybox"
	if err := checkStatic(c.Busybox); err != nil {
		return c, fmt.Errorf("testvm: %w: apt-get install busybox-static", err)
	}
	k, err := kernel(ctx, cacheDir, log)
	if err != nil {
		return c, err
	}
	if k.ModulesDir == "" {
		return c, fmt.Errorf("testvm: kernel %s has no modules directory: give one with kvm_amd", k.Vmlinuz)
	}
	c.Kernel = k.Vmlinuz
	mods, err := images.CollectModules(k.ModulesDir, append(append([]string{}, KVMModules...), DeviceModules...))
	if err != nil {
		return c, fmt.Errorf("testvm: %w", err)
	}
	ordered, err := images.LoadOrder(mods)
	if err != nil {
		return c, fmt.Errorf("testvm: the KVM modules of %s: %w", k.Vmlinuz, err)
	}
	for _, m := range ordered {
		p, err := moduleFile(cacheDir, k, m)
		if err != nil {
			return c, err
		}
		c.Modules = append(c.Modules, p)
	}
	return c, nil
}

// kernel returns Debian's cloud kernel through the images package, or the
// newest one already unpacked in cacheDir when apt cannot say which it is.
func kernel(ctx context.Context, cacheDir string, log io.Writer) (images.KernelInfo, error) {
	k, err := images.DebianKernel(ctx, cacheDir, log)
	if err == nil {
		return k, nil
	}
	found, _ := filepath.Glob(filepath.Join(cacheDir, "debian-kernel", "*", "boot", "vmlinuz-*"))
	if len(found) == 0 {
		return k, fmt.Errorf("testvm: no kernel for the VM (run `make images` on a Debian 12 host to fetch one into %s): %w", cacheDir, err)
	}
	sort.Strings(found)
	vmlinuz := found[len(found)-1]
	release := filepath.Base(vmlinuz)[len("vmlinuz-"):]
	modules := filepath.Join(filepath.Dir(filepath.Dir(vmlinuz)), "lib", "modules", release)
	fmt.Fprintf(log, "testvm: apt cannot name the kernel (%v); using %s\n", err, vmlinuz)
	return images.KernelFromPath(vmlinuz, modules)
}

// moduleFile returns a path to m uncompressed: its own file when the kernel
// ships it uncompressed, else a copy written once into
// cacheDir/testvm-modules/<release>/.
func moduleFile(cacheDir string, k images.KernelInfo, m images.Module) (string, error) {
	p := filepath.Join(k.ModulesDir, filepath.FromSlash(m.Path))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p, nil
	}
	dir := filepath.Join(cacheDir, "testvm-modules", k.Release)
	p = filepath.Join(dir, filepath.Base(m.Path))
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("testvm: create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".module-")
	if err != nil {
		return "", fmt.Errorf("testvm: write module %s: %w", m.Name, err)
	}
	defer os.Remove(f.Name()) // after the rename there is nothing to remove
	_, err = f.Write(m.Data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		return "", fmt.Errorf("testvm: write module %s into %s: %w", m.Name, dir, err)
	}
	return p, nil
}
