package images

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/govmm/govmm/images/moddep"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// VirtioModules are the modules the default guest loads. Debian's cloud
// kernel builds all of virtio as modules; these give virtio-pci, -blk, -net
// and -rng. Their own dependencies are added by CollectModules.
var VirtioModules = []string{
	"virtio", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
	"virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net", "virtio_rng",
}

// PowerButtonModules let the default guest hear the ACPI power button
// (govmm presses it on SIGTERM): Debian's cloud kernel builds the button
// driver, which turns the event into KEY_POWER, and evdev, through which
// the agent reads it, as modules.
var PowerButtonModules = []string{"button", "evdev"}

// DefaultModules are the modules the default initrd carries.
var DefaultModules = append(append([]string{}, VirtioModules...), PowerButtonModules...)

// Module is one kernel module ready to go into an initrd: uncompressed, so the
// guest can hand it to init_module as it is.
type Module struct {
	Name    string   // as the kernel spells it ("virtio_rng")
	Path    string   // relative to /lib/modules/<release>, ending in ".ko"
	Depends []string // names of the modules it needs (from its .modinfo)
	Data    []byte   // the uncompressed ELF object
}

// CollectModules finds the named modules and everything they depend on under
// modulesDir (a /lib/modules/<release> directory), reading each module's
// dependencies from its own .modinfo section, since Debian's package carries
// no modules.dep. Compressed modules (.ko.xz, .ko.zst, .ko.gz) are
// decompressed. The result is sorted by name.
func CollectModules(modulesDir string, names []string) ([]Module, error) {
	files, err := indexModules(modulesDir)
	if err != nil {
		return nil, err
	}
	byName := map[string]Module{}
	queue := append([]string(nil), names...)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, ok := byName[name]; ok {
			continue
		}
		rel, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("kernel module %q not found under %s: check the kernel has it as a module (not built in) or drop it from the list", name, modulesDir)
		}
		m, err := readModule(modulesDir, rel)
		if err != nil {
			return nil, err
		}
		byName[name] = m
		queue = append(queue, m.Depends...)
	}
	mods := make([]Module, 0, len(byName))
	for _, m := range byName {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods, nil
}

// ModulesDep returns the modules.dep file (modules.dep(5)) for mods: a line
// per module, sorted by path, with the paths of all the modules it needs,
// directly or not. The agent reads it to order its init_module calls; both
// sides use package moddep.
func ModulesDep(mods []Module) ([]byte, error) {
	d, err := moddep.Build(depEntries(mods))
	if err != nil {
		return nil, err
	}
	return d.Format(), nil
}

// LoadOrder returns mods with each module after those it needs: the order
// init_module must see them in, the same the agent derives from
// modules.dep. A missing dependency or a cycle is an error.
func LoadOrder(mods []Module) ([]Module, error) {
	d, err := moddep.Build(depEntries(mods))
	if err != nil {
		return nil, err
	}
	paths, err := d.LoadOrder()
	if err != nil {
		return nil, err
	}
	byPath := make(map[string]Module, len(mods))
	for _, m := range mods {
		byPath[m.Path] = m
	}
	out := make([]Module, len(paths))
	for i, p := range paths {
		out[i] = byPath[p]
	}
	return out, nil
}

func depEntries(mods []Module) []moddep.Module {
	entries := make([]moddep.Module, len(mods))
	for i, m := range mods {
		entries[i] = moddep.Module{Name: m.Name, Path: m.Path, Depends: m.Depends}
	}
	return entries
}

// indexModules maps module names to their paths relative to modulesDir.
func indexModules(modulesDir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(modulesDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || moduleSuffix(p) == "" {
			return nil
		}
		rel, err := filepath.Rel(modulesDir, p)
		if err != nil {
			return err
		}
		files[moddep.Name(rel)] = filepath.ToSlash(rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list kernel modules in %s (give the kernel's /lib/modules/<release> directory): %w", modulesDir, err)
	}
	return files, nil
}

// moduleSuffix returns the module suffix of name (".ko", ".ko.xz", ...), or
// "" if name is not a module file.
func moduleSuffix(name string) string {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}

func readModule(modulesDir, rel string) (Module, error) {
	raw, err := os.ReadFile(filepath.Join(modulesDir, rel))
	if err != nil {
		return Module{}, fmt.Errorf("read kernel module: %w", err)
	}
	suffix := moduleSuffix(rel)
	data, err := decompressModule(suffix, raw)
	if err != nil {
		return Module{}, fmt.Errorf("decompress kernel module %s (the file may be damaged: unpack the kernel again): %w", rel, err)
	}
	info, err := ModInfo(data)
	if err != nil {
		return Module{}, fmt.Errorf("kernel module %s: %w", rel, err)
	}
	name := moddep.Name(rel)
	if info["name"] != "" && info["name"] != name {
		return Module{}, fmt.Errorf("kernel module %s calls itself %q, want %q: rename the file", rel, info["name"], name)
	}
	var deps []string
	for _, d := range strings.Split(info["depends"], ",") {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, strings.ReplaceAll(d, "-", "_"))
		}
	}
	return Module{Name: name, Path: strings.TrimSuffix(rel, suffix) + ".ko", Depends: deps, Data: data}, nil
}

func decompressModule(suffix string, raw []byte) ([]byte, error) {
	var r io.Reader
	switch suffix {
	case ".ko":
		return raw, nil
	case ".ko.xz":
		xr, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		r = xr
	case ".ko.zst":
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case ".ko.gz":
		gr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		r = gr
	default:
		return nil, fmt.Errorf("unknown module suffix %q", suffix)
	}
	return io.ReadAll(r)
}

// ModInfo returns the key=value pairs of a kernel module's .modinfo section
// (name, depends, vermagic, ...). For keys that repeat (alias, parm), the
// last value wins.
func ModInfo(ko []byte) (map[string]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("not an ELF kernel module: %w", err)
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section: not a kernel module")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo section: %w", err)
	}
	return parseModInfo(data), nil
}

// parseModInfo splits a .modinfo section: NUL-terminated "key=value"
// strings, with NUL padding between them.
func parseModInfo(data []byte) map[string]string {
	info := map[string]string{}
	for _, field := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(field), "=")
		if ok && k != "" {
			info[k] = v
		}
	}
	return info
}
