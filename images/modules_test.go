package images

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/govmm/govmm/images/moddep"
)

// fakeModule returns a minimal ELF64 relocatable object with a .modinfo
// section holding the given "key=value" strings, as a kernel module has.
func fakeModule(t *testing.T, modinfo ...string) []byte {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	shstrOff := infoOff + uint64(len(info))
	shoff := (shstrOff + uint64(len(shstr)) + 7) &^ 7
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shoff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	sections := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, &hdr); err != nil {
		t.Fatal(err)
	}
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, int(shoff)-b.Len()))
	if err := binary.Write(&b, binary.LittleEndian, sections); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestModInfo(t *testing.T) {
	ko := fakeModule(t, "alias=virtio:d00000001v*", "depends=net_failover,virtio_ring", "name=virtio_net", "vermagic=6.1.0-56-cloud-amd64 SMP mod_unload")
	got, err := ModInfo(ko)
	if err != nil {
		t.Fatalf("ModInfo() error: %v", err)
	}
	want := map[string]string{"alias": "virtio:d00000001v*", "depends": "net_failover,virtio_ring", "name": "virtio_net", "vermagic": "6.1.0-56-cloud-amd64 SMP mod_unload"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ModInfo() = %v, want %v", got, want)
	}
	for name, bad := range map[string][]byte{"not elf": []byte("hello"), "no .modinfo": fakeModuleWithout(t)} {
		if got, err := ModInfo(bad); err == nil {
			t.Errorf("ModInfo(%s) = %v, want an error", name, got)
		}
	}
}

// fakeModuleWithout is an ELF object whose section is not .modinfo.
func fakeModuleWithout(t *testing.T) []byte {
	ko := fakeModule(t, "name=x")
	return bytes.Replace(ko, []byte(".modinfo"), []byte(".notinfo"), 1)
}

func TestParseModInfo(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"name=a\x00\x00\x00depends=\x00", map[string]string{"name": "a", "depends": ""}},
		{"junk\x00=x\x00k=v=w\x00", map[string]string{"k": "v=w"}},
	}
	for _, tt := range tests {
		if got := parseModInfo([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseModInfo(%q) = %v, want %v", tt.in, got, tt.want)
		}
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
		if got := moddep.Name(tt.in); got != tt.want {
			t.Errorf("moddep.Name(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// debianVirtioDep is ModulesDep's output for the virtio modules of Debian
// 12's cloud kernel.
const debianVirtioDep = `kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
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

// fakeVirtioTree lays out the virtio modules of Debian 12's cloud kernel,
// with their real dependencies, some compressed, plus an unrelated module.
// It returns the directory and each module's uncompressed bytes by name.
func fakeVirtioTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	type mod struct{ file, depends string }
	mods := []mod{
		{"kernel/drivers/virtio/virtio.ko", "virtio_ring"},
		{"kernel/drivers/virtio/virtio_ring.ko.xz", ""},
		{"kernel/drivers/virtio/virtio_pci_modern_dev.ko", ""},
		{"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", ""},
		{"kernel/drivers/virtio/virtio_pci.ko.zst", "virtio_pci_modern_dev,virtio_ring,virtio,virtio_pci_legacy_dev"},
		{"kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring"},
		{"kernel/net/core/failover.ko.gz", ""},
		{"kernel/drivers/net/net_failover.ko", "failover"},
		{"kernel/drivers/net/virtio_net.ko", "net_failover,virtio,virtio_ring"},
		{"kernel/drivers/char/hw_random/virtio-rng.ko", "virtio,virtio_ring"},
		{"kernel/fs/ext4/unrelated.ko", ""},
	}
	dir := t.TempDir()
	plain := map[string][]byte{}
	for _, m := range mods {
		name := moddep.Name(m.file)
		ko := fakeModule(t, "depends="+m.depends, "name="+name)
		plain[name] = ko
		data := compress(t, moduleSuffix(m.file), ko)
		p := filepath.Join(dir, filepath.FromSlash(m.file))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, plain
}

func compress(t *testing.T, suffix string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	var err error
	switch suffix {
	case ".ko":
		return data
	case ".ko.xz":
		w, err = xz.NewWriter(&b)
	case ".ko.zst":
		w, err = zstd.NewWriter(&b)
	case ".ko.gz":
		w = gzip.NewWriter(&b)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCollectModules(t *testing.T) {
	dir, plain := fakeVirtioTree(t)
	mods, err := CollectModules(dir, VirtioModules)
	if err != nil {
		t.Fatalf("CollectModules() error: %v", err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
		if !bytes.Equal(m.Data, plain[m.Name]) {
			t.Errorf("CollectModules() %s data is not the uncompressed module", m.Name)
		}
		if !strings.HasSuffix(m.Path, ".ko") {
			t.Errorf("CollectModules() %s path = %q, want a .ko path", m.Name, m.Path)
		}
	}
	want := []string{"failover", "net_failover", "virtio", "virtio_blk", "virtio_net", "virtio_pci", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_ring", "virtio_rng"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("CollectModules() names = %q, want %q", names, want)
	}
	dep, err := ModulesDep(mods)
	if err != nil {
		t.Fatalf("ModulesDep() error: %v", err)
	}
	if string(dep) != debianVirtioDep {
		t.Errorf("ModulesDep() =\n%s\nwant\n%s", dep, debianVirtioDep)
	}

	// Asking for one module brings what it needs.
	mods, err = CollectModules(dir, []string{"virtio_net"})
	if err != nil || len(mods) != 5 {
		t.Errorf("CollectModules(virtio_net) = %d modules, %v, want 5 (failover, net_failover, virtio, virtio_net, virtio_ring)", len(mods), err)
	}
}

func TestCollectModulesErrors(t *testing.T) {
	dir, _ := fakeVirtioTree(t)
	if mods, err := CollectModules(dir, []string{"virtio_gpu"}); err == nil {
		t.Errorf("CollectModules(virtio_gpu) = %d modules, want an error for a missing module", len(mods))
	}
	if mods, err := CollectModules(filepath.Join(dir, "nowhere"), VirtioModules); err == nil {
		t.Errorf("CollectModules(nowhere) = %d modules, want an error", len(mods))
	}
	// A module whose .modinfo name differs from its file name.
	bad := filepath.Join(dir, "kernel", "misnamed.ko")
	if err := os.WriteFile(bad, fakeModule(t, "name=other"), 0o644); err != nil {
		t.Fatal(err)
	}
	if mods, err := CollectModules(dir, []string{"misnamed"}); err == nil {
		t.Errorf("CollectModules(misnamed) = %d modules, want an error", len(mods))
	}
	// A module that needs one the set lacks.
	if dep, err := ModulesDep([]Module{{Name: "a", Path: "a.ko", Depends: []string{"b"}}}); err == nil {
		t.Errorf("ModulesDep(a needs b) = %q, want an error", dep)
	}
}

// FuzzModInfo reads .modinfo out of any bytes: modules come from a
// downloaded package, so they are file input.
func FuzzModInfo(f *testing.F) {
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("not a module"))
	f.Fuzz(func(t *testing.T, ko []byte) {
		if info, err := ModInfo(ko); err != nil && info != nil {
			t.Errorf("ModInfo = %v with error %v, want nil with an error", info, err)
		}
	})
}

func TestLoadOrder(t *testing.T) {
	mod := func(name string, deps ...string) Module {
		return Module{Name: name, Path: "kernel/" + name + ".ko", Depends: deps}
	}
	tests := []struct {
		name string
		mods []Module
		want string // names in load order; "error" for an error
	}{
		{"kvm_amd", []Module{mod("irqbypass"), mod("kvm", "irqbypass"), mod("kvm_amd", "kvm")}, "irqbypass kvm kvm_amd"},
		{"sorted by name is not load order", []Module{mod("a", "c"), mod("b"), mod("c", "b")}, "b c a"},
		{"cycle", []Module{mod("a", "b"), mod("b", "a")}, "error"},
		{"missing dependency", []Module{mod("a", "b")}, "error"},
	}
	for _, tt := range tests {
		got, err := LoadOrder(tt.mods)
		var names []string
		for _, m := range got {
			names = append(names, m.Name)
		}
		s := strings.Join(names, " ")
		if err != nil {
			s = "error"
		}
		if s != tt.want {
			t.Errorf("LoadOrder(%s) = %q (%v), want %q", tt.name, s, err, tt.want)
		}
	}
}
