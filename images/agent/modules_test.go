package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/moddep"
)

// debianVirtio is modules.dep as images.ModulesDep writes it for the virtio
// modules of Debian 12's cloud kernel (6.1.0-56-cloud-amd64).
const debianVirtio = `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/net/core/failover.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/core/failover.ko:
`

// writeModules lays out a fake /lib/modules/<release> directory: modules.dep
// and, for each module path, a file whose content is its path.
func writeModules(t *testing.T, dep string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := moddep.Parse(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	for p := range d {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadModules(t *testing.T) {
	dir := writeModules(t, debianVirtio)
	var loadedImages []string
	load := func(image []byte) error {
		loadedImages = append(loadedImages, string(image))
		switch string(image) {
		case "kernel/net/core/failover.ko":
			return unix.EEXIST
		case "kernel/drivers/char/hw_random/virtio-rng.ko":
			return unix.ENOEXEC
		}
		return nil
	}
	var out bytes.Buffer
	loaded, failed := loadModules(&out, dir, load)
	if loaded != 9 || failed != 1 {
		t.Errorf("loadModules() = %d loaded, %d failed, want 9, 1; output:\n%s", loaded, failed, out.String())
	}
	d, err := moddep.Parse(strings.NewReader(debianVirtio))
	if err != nil {
		t.Fatal(err)
	}
	want, err := d.LoadOrder()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(loadedImages) != fmt.Sprint(want) {
		t.Errorf("loadModules() loaded %q, want %q", loadedImages, want)
	}
	for _, line := range []string{
		"GOVMM-AGENT-MODULE virtio_ring ok\n",
		"GOVMM-AGENT-MODULE failover ok (already loaded)\n",
		"GOVMM-AGENT-MODULE virtio_rng FAILED: exec format error\n",
		"GOVMM-AGENT-MODULE virtio_pci ok\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("loadModules() output lacks %q; got:\n%s", line, out.String())
		}
	}
}

func TestLoadModulesNoIndex(t *testing.T) {
	tests := []struct {
		name string
		dep  *string // nil: no modules.dep at all
	}{
		{"missing", nil},
		{"malformed", ptr("no colon\n")},
		{"cycle", ptr("a.ko: b.ko\nb.ko: a.ko\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.dep != nil {
				dir = writeModules(t, "")
				if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(*tt.dep), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			load := func([]byte) error { return errors.New("must not be called") }
			if loaded, failed := loadModules(&out, dir, load); loaded != 0 || failed != 0 {
				t.Errorf("loadModules() = %d, %d, want 0, 0", loaded, failed)
			}
			if !strings.HasPrefix(out.String(), "GOVMM-AGENT-MODULE none: ") {
				t.Errorf("loadModules() output = %q, want a \"GOVMM-AGENT-MODULE none: \" line", out.String())
			}
		})
	}
}

func ptr(s string) *string { return &s }
