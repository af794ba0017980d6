package boot

// The fast path's cache of decompressed kernels.
//
// A cached vmlinux is named by the bzImage's SHA-256 and its own CRC-32C:
// <sha256>-crc32c-<crc>.vmlinux. The first finds it (a cryptographic hash,
// so no image can pass for another); the second is checked against the
// file's bytes before they are used, so a truncated or corrupted file, or
// one changed behind govmm's back, is never booted: it is decompressed
// again and replaced. One file, written atomically, holds both the kernel
// and what it must check to, so no reader can pair a new kernel with an
// old check value.
//
// Why a CRC and not a second SHA-256: the check runs on every hit, and
// measured on the 2-core PVM host of DESIGN.md (medians of 9) with
// Debian's cloud kernel, a 13 MiB bzImage holding a 51 MiB vmlinux, a hit
// costs 18-22 ms to read the file and 9 ms to hash the image; SHA-256 over
// the vmlinux would add 47-49 ms (with SHA-NI), which made a hit (77 ms)
// hardly faster than decompressing its lz4 payload again (76-83 ms),
// while CRC-32C (in hardware) adds 4-6 ms: a hit takes 36 ms. For Debian's
// generic kernel (xz) a hit takes 46 ms, decompressing 1.15 s. Nor would
// a cryptographic hash of the vmlinux add safety: whoever can write to the
// directory can also name a file by its own hash. The check guards
// against damage; the directory must be private to guard against people:
// DecompressCached creates it 0700 and
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
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Cached is what DecompressCached found or made.
type Cached struct {
	ELF  []byte
	Hit  bool   // read from the cache, its check value checked
	Path string // the cache file; "" when nothing was cached
	// Stale says why cached files for this image were not used (they
	// failed the check or could not be read) before decompressing
	// again; nil when there were none.
	Stale error
	// unmap releases a hit's ELF, which is the cache file mapped
	// (MapFile): read it inside Guard, and Close it once loaded.
	unmap func() error
}

// Close releases the mapped cache file of a hit; ELF is not to be read
// after it.
func (c *Cached) Close() error {
	if c.unmap == nil {
		return nil
	}
	err := c.unmap()
	c.unmap, c.ELF = nil, nil
	return err
}

// cacheName is the name of the cache file for an image's hash and its
// vmlinux's check value.
func cacheName(imageSum, elfCheck string) string { return imageSum + "-" + elfCheck + ".vmlinux" }

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// checkValue is a vmlinux's check value as a cache file's name holds it.
func checkValue(elf []byte) string {
	return fmt.Sprintf("crc32c-%08x", crc32.Checksum(elf, castagnoli()))
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
	c.Path = filepath.Join(cacheDir, cacheName(imageSum, checkValue(c.ELF)))
	if err := writeAtomic(c.Path, c.ELF); err != nil {
		return Cached{ELF: c.ELF, Stale: c.Stale}, fmt.Errorf("caching the decompressed kernel: %w (check that %s is writable)", err, cacheDir)
	}
	// The file of the name govmm used before the check value was in it.
	if err := os.Remove(filepath.Join(cacheDir, imageSum+".vmlinux")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("removing an old kernel cache file: %w", err)
	}
	return c, nil
}

// lookup returns the first cache file for imageSum whose bytes give the
// check value in its name. Files that do not are removed and named in
// Stale.
func lookup(dir, imageSum string) (Cached, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Cached{}, fmt.Errorf("reading the kernel cache: %w (remove %s or pick another with -cache)", err, dir)
	}
	var c Cached
	var stale []error
	for _, e := range entries {
		name := e.Name()
		check, ok := strings.CutPrefix(name, imageSum+"-")
		if !ok {
			continue
		}
		if check, ok = strings.CutSuffix(check, ".vmlinux"); !ok {
			continue
		}
		path := filepath.Join(dir, name)
		b, unmap, err := MapFile(path)
		if err != nil {
			stale = append(stale, fmt.Errorf("%s: %w", name, err))
			continue
		}
		switch {
		case checkValue(b) != check:
			stale = append(stale, fmt.Errorf("%s: its CRC-32C is not the one in its name (a damaged or changed file)", name))
		case !bytes.HasPrefix(b, []byte("\x7fELF")):
			stale = append(stale, fmt.Errorf("%s: not an ELF file", name))
		default:
			c.ELF, c.Hit, c.Path, c.unmap = b, true, path, unmap
			return c, nil
		}
		if err := unmap(); err != nil {
			stale = append(stale, fmt.Errorf("unmapping %s: %w", name, err))
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
