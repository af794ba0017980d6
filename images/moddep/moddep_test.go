package moddep

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// debianVirtio is modules.dep for the virtio modules of Debian 12's cloud
// kernel (6.1.0-56-cloud-amd64), as Build and Format write it.
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

// debianVirtioModules are the same modules with the direct dependencies
// their .modinfo sections name.
var debianVirtioModules = []Module{
	{"virtio", "kernel/drivers/virtio/virtio.ko", []string{"virtio_ring"}},
	{"virtio_ring", "kernel/drivers/virtio/virtio_ring.ko", nil},
	{"virtio_pci_modern_dev", "kernel/drivers/virtio/virtio_pci_modern_dev.ko", nil},
	{"virtio_pci_legacy_dev", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko", nil},
	{"virtio_pci", "kernel/drivers/virtio/virtio_pci.ko", []string{"virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci_legacy_dev"}},
	{"virtio_blk", "kernel/drivers/block/virtio_blk.ko", []string{"virtio", "virtio_ring"}},
	{"failover", "kernel/net/core/failover.ko", nil},
	{"net_failover", "kernel/drivers/net/net_failover.ko", []string{"failover"}},
	{"virtio_net", "kernel/drivers/net/virtio_net.ko", []string{"net_failover", "virtio", "virtio_ring"}},
	{"virtio_rng", "kernel/drivers/char/hw_random/virtio-rng.ko", []string{"virtio", "virtio_ring"}},
}

func TestBuildFormat(t *testing.T) {
	d, err := Build(debianVirtioModules)
	if err != nil {
		t.Fatalf("Build(debian virtio) error: %v", err)
	}
	if got := string(d.Format()); got != debianVirtio {
		t.Errorf("Build(debian virtio).Format() =\n%s\nwant\n%s", got, debianVirtio)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		mods    []Module
		wantErr string
	}{
		{"missing dependency", []Module{{"a", "a.ko", []string{"b"}}}, "needs b"},
		{"same name twice", []Module{{"a", "a.ko", nil}, {"a", "b.ko", nil}}, "twice"},
		{"same path twice", []Module{{"a", "a.ko", nil}, {"b", "a.ko", nil}}, "twice"},
		{"absolute path", []Module{{"a", "/lib/a.ko", nil}}, "absolute"},
		{"path with a blank", []Module{{"a", "my mods/a.ko", nil}}, "cannot carry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Build(tt.mods)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Build(%v) = %v, %v, want an error containing %q", tt.mods, d, err, tt.wantErr)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Index
	}{
		{"empty", "", Index{}},
		{"comments and blanks", "# header\n\n a.ko: \n", Index{"a.ko": {}}},
		{"deps", "c.ko: b.ko a.ko\nb.ko: a.ko\na.ko:\n", Index{"c.ko": {"b.ko", "a.ko"}, "b.ko": {"a.ko"}, "a.ko": {}}},
		{"crlf", "b.ko: a.ko\r\na.ko:\r\n", Index{"b.ko": {"a.ko"}, "a.ko": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			if !equal(got, tt.want) {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// equal compares indexes, taking nil and empty dependency lists as one.
func equal(a, b Index) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || len(v) != len(w) || (len(v) > 0 && !reflect.DeepEqual(v, w)) {
			return false
		}
	}
	return true
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"no colon here\n", "want"},
		{": a.ko\n", "want"},
		{"a.ko:\na.ko: b.ko\n", "twice"},
		{"/lib/modules/a.ko:\n", "absolute"},
		{"../../etc/passwd:\n", "not a clean path"},
		{"a.ko: kernel/../../b.ko\n", "not a clean path"},
		{"a.ko: /b.ko\n", "absolute"},
	}
	for _, tt := range tests {
		got, err := Parse(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Parse(%q) = %q, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
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
			d, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := d.LoadOrder()
			if err != nil {
				t.Fatalf("LoadOrder() error: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadOrder() = %q, want %q", got, tt.want)
			}
			if err := checkOrder(d, got); err != "" {
				t.Error(err)
			}
		})
	}
}

// checkOrder says what is wrong with order as a load order of d: a module
// missing or repeated, or one placed before something it needs.
func checkOrder(d Index, order []string) string {
	pos := map[string]int{}
	for i, m := range order {
		if _, dup := pos[m]; dup {
			return "LoadOrder() lists " + m + " twice"
		}
		if _, ok := d[m]; !ok {
			return "LoadOrder() lists " + m + ", which is not in the index"
		}
		pos[m] = i
	}
	if len(pos) != len(d) {
		return "LoadOrder() leaves modules out"
	}
	for m, deps := range d {
		for _, dep := range deps {
			if pos[dep] >= pos[m] {
				return "LoadOrder() puts " + m + " before its dependency " + dep
			}
		}
	}
	return ""
}

func TestLoadOrderErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"cycle", "a.ko: b.ko\nb.ko: a.ko\n", "cycle"},
		{"self", "a.ko: a.ko\n", "cycle"},
		{"missing", "a.ko: gone.ko\n", "gone.ko"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := d.LoadOrder()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadOrder() = %q, %v, want an error naming %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kernel/drivers/virtio/virtio.ko", "virtio"},
		{"kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng"},
		{"kernel/drivers/net/virtio_net.ko.xz", "virtio_net"},
		{"failover.ko.zst", "failover"},
	}
	for _, tt := range tests {
		if got := Name(tt.in); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParse feeds the modules.dep reader any text. What it accepts must
// survive Format and Parse unchanged (Format writes every path Parse
// allows), and when LoadOrder succeeds its answer must hold each module
// once, after everything it needs.
func FuzzParse(f *testing.F) {
	f.Add(debianVirtio)
	f.Add("kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n")
	f.Add("a.ko: b.ko\nb.ko: a.ko\n")
	f.Add(":::\n\n x.ko:y.ko z.ko\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := Parse(strings.NewReader(text))
		if err != nil {
			if d != nil {
				t.Errorf("Parse(%q) = %q with error %v, want nil", text, d, err)
			}
			return
		}
		formatted := d.Format()
		again, err := Parse(bytes.NewReader(formatted))
		if err != nil || !equal(again, d) {
			t.Errorf("Parse(Format(Parse(%q))) = %q, %v, want %q", text, again, err, d)
		}
		order, err := d.LoadOrder()
		if err != nil {
			return
		}
		if msg := checkOrder(d, order); msg != "" {
			t.Errorf("Parse(%q).%s: %q", text, msg, order)
		}
	})
}
