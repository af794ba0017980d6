package main

import (
	"reflect"
	"strings"
	"testing"
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

func TestParseDep(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want depIndex
	}{
		{"empty", "", depIndex{}},
		{"comments and blanks", "# header\n\n a.ko: \n", depIndex{"a.ko": nil}},
		{"deps", "c.ko: b.ko a.ko\nb.ko: a.ko\na.ko:\n", depIndex{"c.ko": {"b.ko", "a.ko"}, "b.ko": {"a.ko"}, "a.ko": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDep(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseDep(%q) error: %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("parseDep(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for k, v := range tt.want {
				if g := got[k]; len(g) != len(v) || (len(v) > 0 && !reflect.DeepEqual(g, v)) {
					t.Errorf("parseDep(%q)[%q] = %v, want %v", tt.in, k, g, v)
				}
			}
		})
	}
}

func TestParseDepErrors(t *testing.T) {
	for _, in := range []string{"no colon here\n", ": a.ko\n", "a.ko:\na.ko: b.ko\n"} {
		if got, err := parseDep(strings.NewReader(in)); err == nil {
			t.Errorf("parseDep(%q) = %v, want an error", in, got)
		}
	}
}

func TestLoadOrder(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"chain", "c.ko: b.ko a.ko\nb.ko: a.ko\na.ko:\n", []string{"a.ko", "b.ko", "c.ko"}},
		{"independent by path", "b.ko:\na.ko:\n", []string{"a.ko", "b.ko"}},
		{"debian virtio", debianVirtio, []string{
			"kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio.ko",
			"kernel/drivers/block/virtio_blk.ko",
			"kernel/drivers/char/hw_random/virtio-rng.ko",
			"kernel/net/core/failover.ko",
			"kernel/drivers/net/net_failover.ko",
			"kernel/drivers/net/virtio_net.ko",
			"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
			"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
			"kernel/drivers/virtio/virtio_pci.ko",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDep(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseDep: %v", err)
			}
			got, err := d.loadOrder()
			if err != nil {
				t.Fatalf("loadOrder() error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("loadOrder() = %q, want %q", got, tt.want)
			}
			checkDepsFirst(t, d, got)
		})
	}
}

// checkDepsFirst fails if a module in order comes before one it depends on.
func checkDepsFirst(t *testing.T, d depIndex, order []string) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range order {
		pos[m] = i
	}
	for m, deps := range d {
		for _, dep := range deps {
			if pos[dep] >= pos[m] {
				t.Errorf("loadOrder() puts %s at %d, before its dependency %s at %d", m, pos[m], dep, pos[dep])
			}
		}
	}
}

func TestLoadOrderErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"cycle", "a.ko: b.ko\nb.ko: a.ko\n", "cycle"},
		{"missing", "a.ko: gone.ko\n", "gone.ko"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseDep(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseDep: %v", err)
			}
			got, err := d.loadOrder()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadOrder() = %q, %v, want an error naming %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestModuleName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kernel/drivers/virtio/virtio.ko", "virtio"},
		{"kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng"},
		{"kernel/drivers/net/virtio_net.ko.xz", "virtio_net"},
		{"failover.ko.zst", "failover"},
	}
	for _, tt := range tests {
		if got := moduleName(tt.in); got != tt.want {
			t.Errorf("moduleName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseDep feeds the modules.dep reader any bytes, then orders what it
// read: it must not panic or loop for ever on cycles.
func FuzzParseDep(f *testing.F) {
	f.Add("kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n")
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add(":::\n\n x.ko:y.ko z.ko\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := parseDep(strings.NewReader(text))
		if err != nil {
			return
		}
		if _, err := d.loadOrder(); err != nil {
			return
		}
	})
}
