package main

// The modules.dep reader lives here, not in a package of its own, because
// u-root's busybox builder copies only dependencies whose import path starts
// with a domain name: a "github.com/govmm/govmm/..." import would be taken for the standard
// library and left out. The host side writes the file (images.ModulesDep).

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// depIndex mirrors a modules.dep file (see depmod(8) and modules.dep(5)): for each
// module, its path relative to /lib/modules/<release>, mapped to the paths of
// the modules it depends on, directly or indirectly.
type depIndex map[string][]string

// parseDep reads a modules.dep file. Each line is
//
//	kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
//
// Blank lines and lines starting with '#' are skipped.
func parseDep(r io.Reader) (depIndex, error) {
	d := depIndex{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		mod, deps, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" {
			return nil, fmt.Errorf("modules.dep line %d %q: want \"module.ko: dep.ko ...\"; regenerate the file", n, line)
		}
		if _, dup := d[mod]; dup {
			return nil, fmt.Errorf("modules.dep line %d: module %q listed twice; regenerate the file", n, mod)
		}
		d[mod] = strings.Fields(deps)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return d, nil
}

// loadOrder returns every module path in d, each after all the modules it
// depends on. Among modules whose dependencies are met, the order is by path,
// so the result is the same on every run. A dependency missing from d, or a
// cycle, is an error.
func (d depIndex) loadOrder() ([]string, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int, len(d))
	order := make([]string, 0, len(d))
	var visit func(mod string, chain []string) error
	visit = func(mod string, chain []string) error {
		switch state[mod] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules.dep has a dependency cycle: %s; fix the module set", strings.Join(append(chain, mod), " -> "))
		}
		deps, ok := d[mod]
		if !ok {
			return fmt.Errorf("module %q (needed by %s) is not in modules.dep; add it to the initrd", mod, strings.Join(chain, " -> "))
		}
		state[mod] = visiting
		sorted := append([]string(nil), deps...)
		sort.Strings(sorted)
		for _, dep := range sorted {
			if err := visit(dep, append(chain, mod)); err != nil {
				return err
			}
		}
		state[mod] = done
		order = append(order, mod)
		return nil
	}
	for _, mod := range d.paths() {
		if err := visit(mod, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (d depIndex) paths() []string {
	paths := make([]string, 0, len(d))
	for p := range d {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// moduleName returns the module name for a module file path, as the kernel spells
// it: the base name without ".ko" and any compression suffix, with '-'
// turned into '_' ("kernel/drivers/char/hw_random/virtio-rng.ko.xz" gives
// "virtio_rng").
func moduleName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}
