package boot

// The fast path's cache of decompressed kernels.
//
// A cached vmlinux is named by two SHA-256 hashes, the bzImage's and its
// own: <image>-<elf>.vmlinux. The first finds it; the second is checked
// against the file's bytes before they are used, so a truncated or
// corrupted file, or one changed behind govmm's back, is never booted: it
// is decompressed again and replaced. One file, written atomically, holds
// both the kernel and what it must hash to, so no reader can pair a new
// kernel with an old checksum.
//
// The hash costs time on every hit: on the 2-core PVM host of
// DESIGN.md, reading Debian's 51 MiB cloud vmlinux from the page cache
// took 20-24 ms, hashing it 35-50 ms (SHA-NI), decompressing the 14 MiB
// bzImage's lz4 payload again 120-180 ms. A hit stays the faster way.
//
// The hash guards against damage, not against someone who can write to
// the directory: such a someone can name a file by its own hash. So the
// directory itself must be private: DecompressCached creates it 0700 and
// uses a directory only if it is not a symlink, belongs to the effective
// user, and cannot be written by others, nor by a group other than the
// user's own (a umask of 002 with a group per user, as many distributions
// set up, makes directories group-writable by that group alone).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Cached is what DecompressCached found or made.
type Cached struct {
	ELF  []byte
	Hit  bool   // read from the cache, its hash checked
	Path string // the cache file; "" when nothing was cached
	// Stale says why cached files for this image were not used (they
	// failed the hash check or could not be read) before decompressing
	// again; nil when there were none.
	Stale error
}

// cacheName is the name of the cache file for an image's hash and its
// vmlinux's hash.
func cacheName(imageSum, elfSum string) string { return imageSum + "-" + elfSum + ".vmlinux" }

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// DecompressCached is Decompress with a cache directory (see the top of
// this file). Decompression errors wrap ErrNoFastPath. When only the cache
// fails (an unsafe directory, a full disk) the ELF is returned along with
// an error that does not.
func DecompressCached(cacheDir string, image []byte) (Cached, error) {
	if err := privateDir(cacheDir); err != nil {
		elf, derr := Decompress(image)
		if derr != nil {
			return Cached{}, derr
		}
		return Cached{ELF: elf}, fmt.Errorf("not using the kernel cache: %w", err)
	}
	imageSum := sumHex(image)
	c, err := lookup(cacheDir, imageSum)
	if err != nil {
		return Cached{}, err
	}
	if c.Hit {
		return c, nil
	}
	if c.ELF, err = Decompress(image); err != nil {
		return Cached{}, err
	}
	c.Path = filepath.Join(cacheDir, cacheName(imageSum, sumHex(c.ELF)))
	if err := writeAtomic(c.Path, c.ELF); err != nil {
		return Cached{ELF: c.ELF, Stale: c.Stale}, fmt.Errorf("caching the decompressed kernel: %w (check that %s is writable)", err, cacheDir)
	}
	// The file of the name govmm used before the hash was in it.
	if err := os.Remove(filepath.Join(cacheDir, imageSum+".vmlinux")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("removing an old kernel cache file: %w", err)
	}
	return c, nil
}

// lookup returns the first cache file for imageSum whose bytes hash to the
// sum in its name. Files that do not are removed and named in Stale.
func lookup(dir, imageSum string) (Cached, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Cached{}, fmt.Errorf("reading the kernel cache: %w (remove %s or pick another with -cache)", err, dir)
	}
	var c Cached
	var stale []error
	for _, e := range entries {
		name := e.Name()
		elfSum, ok := strings.CutPrefix(name, imageSum+"-")
		if !ok {
			continue
		}
		if elfSum, ok = strings.CutSuffix(elfSum, ".vmlinux"); !ok {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		switch {
		case err != nil:
			stale = append(stale, fmt.Errorf("%s: %w", name, err))
			continue
		case sumHex(b) != elfSum:
			stale = append(stale, fmt.Errorf("%s: its SHA-256 is not the one in its name (a damaged or changed file)", name))
		case !bytes.HasPrefix(b, []byte("\x7fELF")):
			stale = append(stale, fmt.Errorf("%s: not an ELF file", name))
		default:
			c.ELF, c.Hit, c.Path = b, true, path
			return c, nil
		}
		if err := os.Remove(path); err != nil {
			stale = append(stale, fmt.Errorf("removing %s: %w", name, err))
		}
	}
	c.Stale = errors.Join(stale...)
	return c, nil
}

// privateDir makes dir, 0700, if it is missing, and checks that no one
// but the effective user (and the members of its primary group, if the
// directory is theirs to write) can change what is in it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: give the directory it points to with -cache, if it is yours", dir)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !ok:
		return fmt.Errorf("%s: cannot tell who owns it", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d): give a directory of your own with -cache", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o002 != 0, fi.Mode().Perm()&0o020 != 0 && int(st.Gid) != os.Getegid():
		return fmt.Errorf("%s can be written by others (mode %v, group %d): chmod go-w it, or give another with -cache", dir, fi.Mode().Perm(), st.Gid)
	}
	return nil
}

// writeAtomic writes b to path through a temporary file in the same folder.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".vmlinux-*.tmp")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	return nil
}
