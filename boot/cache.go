package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// CachePath is the file DecompressCached keeps the vmlinux of image in.
func CachePath(cacheDir string, image []byte) string {
	sum := sha256.Sum256(image)
	return filepath.Join(cacheDir, hex.EncodeToString(sum[:])+".vmlinux")
}

// DecompressCached is Decompress with a cache directory: the vmlinux is kept
// in a file named by the sha256 of the image, written atomically (a
// temporary file renamed into place), so concurrent VMMs never see half a
// file. A cached file that is not an ELF file is ignored and rewritten.
// Decompression errors wrap ErrNoFastPath; if only writing the cache
// fails, elf is returned along with the error.
func DecompressCached(cacheDir string, image []byte) (elf []byte, hit bool, err error) {
	path := CachePath(cacheDir, image)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.HasPrefix(b, []byte("\x7fELF")):
		return b, true, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("reading the kernel cache: %w (remove the file or pick another cache directory)", err)
	}
	elf, err = Decompress(image)
	if err != nil {
		return nil, false, err
	}
	if err := writeAtomic(path, elf); err != nil {
		return elf, false, fmt.Errorf("caching the decompressed kernel: %w (check that %s is writable)", err, cacheDir)
	}
	return elf, false, nil
}

// writeAtomic writes b to path through a temporary file in the same folder.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".vmlinux-*.tmp")
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
