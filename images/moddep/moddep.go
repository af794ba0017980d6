// Package moddep is the modules.dep file (depmod(8), modules.dep(5)) of the
// default initrd: the host writes it from the modules it packs (package
// images), the guest agent reads it and loads the modules in dependency
// order. Standard library only, so the agent can import it.
//
// Each line names a module by its path relative to /lib/modules/<release>
// and lists the paths of every module it needs, directly or not:
//
//	kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
package moddep

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"unicode"
)

// Module is one kernel module as the host knows it before writing the file.
type Module struct {
	Name    string   // as the kernel spells it ("virtio_rng"); see Name
	Path    string   // relative to /lib/modules/<release>
	Depends []string // names of the modules it needs directly (its .modinfo "depends")
}

// Index mirrors a modules.dep file: each module's path mapped to the paths
// of every module it needs, directly or not.
type Index map[string][]string

// Build returns the Index of mods: for each module, the paths of all the
// modules it needs, found through the Depends names. A dependency that is
// not among mods, a path that Parse would refuse, or two modules with one
// name or path is an error.
func Build(mods []Module) (Index, error) {
	byName := make(map[string]Module, len(mods))
	d := make(Index, len(mods))
	for _, m := range mods {
		if err := checkPath(m.Path); err != nil {
			return nil, fmt.Errorf("module %s: %w", m.Name, err)
		}
		if _, dup := byName[m.Name]; dup {
			return nil, fmt.Errorf("module %s given twice: collect each module once", m.Name)
		}
		if _, dup := d[m.Path]; dup {
			return nil, fmt.Errorf("module path %s given twice: collect each module once", m.Path)
		}
		byName[m.Name] = m
		d[m.Path] = nil
	}
	for _, m := range mods {
		seen := map[string]bool{}
		var all []string
		var walk func(names []string) error
		walk = func(names []string) error {
			for _, n := range names {
				if seen[n] {
					continue
				}
				seen[n] = true
				dep, ok := byName[n]
				if !ok {
					return fmt.Errorf("module %s needs %s, which is not in the set: collect modules with images.CollectModules", m.Name, n)
				}
				all = append(all, dep.Path)
				if err := walk(dep.Depends); err != nil {
					return err
				}
			}
			return nil
		}
		if err := walk(m.Depends); err != nil {
			return nil, err
		}
		sort.Strings(all)
		d[m.Path] = all
	}
	return d, nil
}

// Format returns d as modules.dep text: a line per module, sorted by path,
// each dependency list in the order d holds it.
func (d Index) Format() []byte {
	var b bytes.Buffer
	for _, p := range d.Paths() {
		b.WriteString(p + ":")
		for _, dep := range d[p] {
			b.WriteString(" " + dep)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// Parse reads a modules.dep file. Blank lines and lines starting with '#'
// are skipped. A line without a colon, a module listed twice, or a path
// that is absolute or climbs out of the modules folder ("..") is an error.
func Parse(r io.Reader) (Index, error) {
	d := Index{}
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
		if err := checkPath(mod); err != nil {
			return nil, fmt.Errorf("modules.dep line %d: %w; regenerate the file", n, err)
		}
		if _, dup := d[mod]; dup {
			return nil, fmt.Errorf("modules.dep line %d: module %q listed twice; regenerate the file", n, mod)
		}
		fields := strings.Fields(deps)
		for _, f := range fields {
			if err := checkPath(f); err != nil {
				return nil, fmt.Errorf("modules.dep line %d: %w; regenerate the file", n, err)
			}
		}
		d[mod] = fields
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return d, nil
}

// checkPath refuses module paths the agent must not open: absolute ones,
// ones that leave /lib/modules/<release>, and ones Format could not write
// back as they are.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty module path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("module path %q is absolute; modules.dep paths are relative to /lib/modules/<release>", p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("module path %q is not a clean path inside /lib/modules/<release>", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r == ':' || unicode.IsSpace(r) }) || strings.HasPrefix(p, "#"):
		return fmt.Errorf("module path %q holds a character modules.dep cannot carry (blank, colon, or a leading #)", p)
	}
	return nil
}

// LoadOrder returns every module path in d, each after all the modules it
// needs. Among modules whose dependencies are met, the order is by path, so
// the result is the same on every run. A dependency missing from d, or a
// cycle, is an error.
func (d Index) LoadOrder() ([]string, error) {
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
	for _, mod := range d.Paths() {
		if err := visit(mod, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Paths returns the module paths of d, sorted.
func (d Index) Paths() []string {
	paths := make([]string, 0, len(d))
	for p := range d {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// Name returns the module name for a module file path, as the kernel spells
// it: the base name without ".ko" and any compression suffix, with '-'
// turned into '_' ("kernel/drivers/char/hw_random/virtio-rng.ko.xz" gives
// "virtio_rng").
func Name(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}
