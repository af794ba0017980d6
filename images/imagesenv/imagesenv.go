// Package imagesenv is the images.env file: where `make images` (the
// mkimages command) says it put the default guest, read by `govmm exec`,
// `make run` and the tests. It is a few key=value lines:
//
//	kernel=/repo/.cache/debian-kernel/6.1.192-2/boot/vmlinuz-6.1.0-56-cloud-amd64
//	release=6.1.0-56-cloud-amd64
//	initrd=/repo/.cache/initrd/0123456789abcdef.cpio
//	generic=/repo/.cache/generic-kernel/debian-kernel/6.1.192-2/boot/vmlinuz-6.1.0-56-amd64
//
// The last line is there only after `make images GENERIC=1` (make test
// does that): Debian's generic kernel, a test fixture. It has a package of its own so that its readers need not link package
// images, which pulls in u-root's builder.
package imagesenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the file's name in the cache folder.
const FileName = "images.env"

// Path is the images.env in cacheDir.
func Path(cacheDir string) string { return filepath.Join(cacheDir, FileName) }

// Guest is what images.env names.
type Guest struct {
	Kernel  string // the kernel image (bzImage)
	Release string // its release, as `uname -r` prints it in the guest
	Initrd  string // the initrd with the guest agent
	// Generic is Debian's generic kernel (linux-image-amd64), whose
	// payload is xz with the x86 BCJ filter, for the fast path's tests;
	// "" when it was not fetched.
	Generic string
}

// Files are the files g names, for copying them elsewhere.
func (g Guest) Files() []string {
	var out []string
	for _, p := range []string{g.Kernel, g.Initrd, g.Generic} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Write writes g as images.env text. A value with a line break cannot be
// written.
func Write(w io.Writer, g Guest) error {
	for _, kv := range g.pairs() {
		if strings.ContainsAny(kv[1], "\r\n") {
			return fmt.Errorf("images.env: %s %q holds a line break: use a path without one", kv[0], kv[1])
		}
	}
	var b strings.Builder
	for _, kv := range g.pairs() {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("images.env: %w", err)
	}
	return nil
}

func (g Guest) pairs() [][2]string {
	kv := [][2]string{{"kernel", g.Kernel}, {"release", g.Release}, {"initrd", g.Initrd}}
	if g.Generic != "" {
		kv = append(kv, [2]string{"generic", g.Generic})
	}
	return kv
}

// Read parses images.env text. Blank lines and lines starting with '#' are
// skipped and unknown keys ignored; a line without '=' or a key given twice
// is an error.
func Read(r io.Reader) (Guest, error) {
	var g Guest
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Guest{}, fmt.Errorf("images.env line %d %q: want key=value; run `make images` to write it again", n, line)
		}
		if seen[k] {
			return Guest{}, fmt.Errorf("images.env line %d: %s given twice; run `make images` to write it again", n, k)
		}
		seen[k] = true
		switch k {
		case "kernel":
			g.Kernel = v
		case "release":
			g.Release = v
		case "initrd":
			g.Initrd = v
		case "generic":
			g.Generic = v
		}
	}
	if err := sc.Err(); err != nil {
		return Guest{}, fmt.Errorf("images.env: %w", err)
	}
	return g, nil
}

// ErrNoFile is wrapped by Load when cacheDir has no images.env.
var ErrNoFile = errors.New("no images.env")

// Load reads cacheDir's images.env and checks it names a kernel and an
// initrd. Its errors say how to make one.
func Load(cacheDir string) (Guest, error) {
	p := Path(cacheDir)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return Guest{}, fmt.Errorf("%w in %s: run `make images` in the govmm checkout (and set GOVMM_CACHE to its .cache folder, or give -cache)", ErrNoFile, cacheDir)
	}
	if err != nil {
		return Guest{}, fmt.Errorf("images.env: %w", err)
	}
	defer f.Close()
	g, err := Read(f)
	if err != nil {
		return Guest{}, fmt.Errorf("%s: %w", p, err)
	}
	if g.Kernel == "" || g.Initrd == "" {
		return Guest{}, fmt.Errorf("%s names no kernel or no initrd: run `make images` to write it again", p)
	}
	return g, nil
}
