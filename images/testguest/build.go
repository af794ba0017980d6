package testguest

import (
	"bytes"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed src
var sources embed.FS

// cflags are the compiler flags: freestanding code (no libc, no SSE, no
// red zone, which interrupt frames would overwrite) at fixed addresses.
var cflags = []string{
	"-ffreestanding", "-fno-pic", "-fno-pie", "-mno-red-zone", "-mno-sse",
	"-mno-mmx", "-mgeneral-regs-only", "-nostdlib", "-O2",
	"-fno-stack-protector", "-fno-asynchronous-unwind-tables",
	"-fcf-protection=none", "-fno-builtin",
	// Stop gcc from turning loops into memset/memcpy calls (there are none).
	"-fno-tree-loop-distribute-patterns",
	"-Wall", "-Wextra", "-Werror",
}

var ldflags = []string{
	"-nostdlib", "-static", "-z", "max-page-size=0x1000", "-z", "noexecstack",
	"--no-warn-rwx-segments", "--build-id=none",
}

// objects are the sources compiled, in link order (entry.S first).
var objects = []string{"entry.S", "cpu.c", "kernel.c", "probe.c", "acpi.c", "smp.c", "trampoline.S", "pci.c", "pit.c", "migrate.c", "virtio.c", "virtio_net.c", "user.c", "migrate_user.c", "virtio_user.c"}

// recipe changes whenever the build steps below change, so the cache hash
// changes with them and not only with the sources.
const recipe = "testguest build v1"

// Build compiles the test guests into cacheDir/testguest-<hash>/, where
// <hash> covers the sources and the build recipe, and returns their paths.
// A finished build is reused. It needs gcc and binutils (ld, objcopy), lz4
// and xz; zstd is used if installed, else a Go encoder.
func Build(cacheDir string) (Guests, error) {
	hash, err := sourceHash()
	if err != nil {
		return Guests{}, err
	}
	dir := filepath.Join(cacheDir, "testguest-"+hash)
	g := guestsIn(dir)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return g, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Guests{}, fmt.Errorf("testguest: create the cache folder: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, "testguest-build-")
	if err != nil {
		return Guests{}, fmt.Errorf("testguest: create a build folder: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left
	if err := buildIn(tmp); err != nil {
		return Guests{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "done"), []byte(hash+"\n"), 0o644); err != nil {
		return Guests{}, fmt.Errorf("testguest: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process may have finished the same build first.
		if _, statErr := os.Stat(filepath.Join(dir, "done")); statErr == nil {
			return g, nil
		}
		return Guests{}, fmt.Errorf("testguest: move the build into place: %w", err)
	}
	return g, nil
}

func guestsIn(dir string) Guests {
	g := Guests{
		Dir:      dir,
		ELF:      filepath.Join(dir, "guest.elf"),
		BzImage:  filepath.Join(dir, "guest.bzImage"),
		BzImages: map[Compression]string{},
	}
	for _, c := range Compressions {
		g.BzImages[c] = filepath.Join(dir, "guest-"+string(c)+".bzImage")
	}
	return g
}

// sourceHash hashes the recipe, the flags and every embedded source file.
func sourceHash() (string, error) {
	h, err := HashSources(sources, "src", recipe, fmt.Sprint(cflags), fmt.Sprint(ldflags))
	if err != nil {
		return "", fmt.Errorf("testguest: %w", err)
	}
	return h, nil
}

// buildIn runs the whole build in dir.
func buildIn(dir string) error {
	for _, tool := range []string{"gcc", "ld", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("testguest: %s not found: install a C toolchain (apt-get install gcc binutils): %w", tool, err)
		}
	}
	src := filepath.Join(dir, "src")
	if err := os.CopyFS(src, mustSub(sources, "src")); err != nil {
		return fmt.Errorf("testguest: write the sources: %w", err)
	}
	var objs []string
	for _, s := range objects {
		obj := filepath.Join(dir, strings.TrimSuffix(s, filepath.Ext(s))+".o")
		args := append(append([]string{}, cflags...), "-c", filepath.Join(src, s), "-o", obj)
		if err := run(dir, "gcc", args...); err != nil {
			return err
		}
		objs = append(objs, obj)
	}
	if err := checkSelfContained(filepath.Join(dir, "user.o")); err != nil {
		return err
	}
	// The virtio driver's ring-3 half may use only user.o's way back.
	if err := checkSelfContained(filepath.Join(dir, "virtio_user.o"), "user_finish_ud2"); err != nil {
		return err
	}
	// Two links of the same objects: guest.elf at 1 MiB, and the raw copy
	// that sits at offset 0x200 of the bzImage's protected-mode part.
	link := func(out string, base uint64) error {
		args := append(append([]string{}, ldflags...), "-T", filepath.Join(src, "guest.ld"),
			fmt.Sprintf("--defsym=LOAD_BASE=%#x", base), "-o", filepath.Join(dir, out))
		return run(dir, "ld", append(args, objs...)...)
	}
	if err := link("guest.elf", LoadAddr); err != nil {
		return err
	}
	if err := link("guest-raw.elf", LoadAddr+Entry64Off); err != nil {
		return err
	}
	if err := run(dir, "objcopy", "-O", "binary", "guest-raw.elf", "guest-raw.bin"); err != nil {
		return err
	}
	return writeBzImages(dir)
}

// writeBzImages writes one bzImage per payload format, and guest.bzImage.
func writeBzImages(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "guest-raw.bin"))
	if err != nil {
		return fmt.Errorf("testguest: %w", err)
	}
	end, err := symbol(filepath.Join(dir, "guest-raw.elf"), "_end")
	if err != nil {
		return err
	}
	guestELF, err := os.ReadFile(filepath.Join(dir, "guest.elf"))
	if err != nil {
		return fmt.Errorf("testguest: %w", err)
	}
	g := guestsIn(dir)
	for _, c := range Compressions {
		payload, err := compress(c, guestELF)
		if err != nil {
			return err
		}
		img, err := BzImage(raw, end-LoadAddr, payload)
		if err != nil {
			return err
		}
		if err := os.WriteFile(g.BzImages[c], img, 0o644); err != nil {
			return fmt.Errorf("testguest: %w", err)
		}
		if c == Gzip {
			if err := os.WriteFile(g.BzImage, img, 0o644); err != nil {
				return fmt.Errorf("testguest: %w", err)
			}
		}
	}
	return nil
}

// checkSelfContained fails if the ring-3 object calls anything outside
// itself: that code would not be user-accessible and ring 3 would fault.
func checkSelfContained(obj string, allowed ...string) error {
	f, err := elf.Open(obj)
	if err != nil {
		return fmt.Errorf("testguest: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("testguest: read the symbols of %s: %w", obj, err)
	}
	var undefined []string
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF && s.Name != "" && !slices.Contains(allowed, s.Name) {
			undefined = append(undefined, s.Name)
		}
	}
	if len(undefined) > 0 {
		return fmt.Errorf("testguest: %s (ring 3) uses %v from ring-0 code; keep it self-contained (gcc may have emitted memset/memcpy: write the loop differently)", strings.TrimSuffix(filepath.Base(obj), ".o")+".c", undefined)
	}
	return nil
}

// symbol returns the value of a symbol of an ELF file.
func symbol(path, name string) (uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("testguest: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return 0, fmt.Errorf("testguest: read the symbols of %s: %w", path, err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value, nil
		}
	}
	return 0, fmt.Errorf("testguest: %s has no symbol %s (see src/guest.ld)", path, name)
}

// run runs a build tool in dir; its output goes into the error.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("testguest: %s %s failed:\n%s%w", name, strings.Join(args, " "), out.String(), err)
		}
		return fmt.Errorf("testguest: run %s: %w", name, err)
	}
	return nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a constant that exists in the embedded tree
	}
	return sub
}
