package boot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cachedImage is a small bzImage and the vmlinux inside it.
func cachedImage(t *testing.T) (img, elf []byte) {
	t.Helper()
	elf = fakeVmlinux(50 << 10)
	f := validBz()
	f.payload = sizeAppend(zstdBytes(t, elf), len(elf))
	return f.build(), elf
}

// TestDecompressCached walks the cache through its life: a cold miss, a
// hit, a damaged file (caught by its check value, decompressed again and
// replaced), a truncated one, one that is not ELF, and the file name govmm
// used before (removed when the new one is written).
func TestDecompressCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	img, elf := cachedImage(t)
	name := cacheName(sumHex(img), checkValue(elf))
	path := filepath.Join(dir, name)
	legacy := filepath.Join(dir, sumHex(img)+".vmlinux")
	write := func(p string, b []byte) func() {
		return func() {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	damaged := bytes.Clone(elf)
	damaged[len(damaged)/2] ^= 1
	steps := []struct {
		name      string
		before    func()
		wantHit   bool
		wantStale string // in Cached.Stale; "" for none
	}{
		{"cold", func() {}, false, ""},
		{"warm", func() {}, true, ""},
		{"one bit flipped", write(path, damaged), false, name + ": its CRC-32C is not the one in its name"},
		{"rewritten", func() {}, true, ""},
		{"truncated", write(path, elf[:1000]), false, "its CRC-32C is not"},
		{"not ELF, named by its own check value", func() {
			os.Remove(path)
			junk := []byte("junk")
			write(filepath.Join(dir, cacheName(sumHex(img), checkValue(junk))), junk)()
		}, false, "not an ELF file"},
		{"a name of an earlier format", func() {
			os.Remove(path)
			write(filepath.Join(dir, cacheName(sumHex(img), sumHex(elf))), elf)()
		}, false, "its CRC-32C is not"},
		{"old-style name beside it", func() {
			os.Remove(path)
			write(legacy, []byte("old"))()
		}, false, ""},
	}
	for _, s := range steps {
		s.before()
		c, err := DecompressCached(dir, img)
		if err != nil || c.Hit != s.wantHit || !bytes.Equal(c.ELF, elf) || c.Path != path {
			t.Errorf("%s: DecompressCached = %d bytes, hit %v, path %s, %v, want %d bytes, hit %v, path %s, nil",
				s.name, len(c.ELF), c.Hit, c.Path, err, len(elf), s.wantHit, path)
		}
		if got := errString(c.Stale); (s.wantStale == "") != (got == "") || !strings.Contains(got, s.wantStale) {
			t.Errorf("%s: Stale = %q, want %q", s.name, got, s.wantStale)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != name {
		t.Errorf("cache dir holds %v (%v), want only %s: no temporary, stale or old-style files", entries, err, name)
	}
	if _, err := DecompressCached(dir, []byte("not a bzImage")); !errors.Is(err, ErrNoFastPath) {
		t.Errorf("DecompressCached(not a bzImage) = %v, want ErrNoFastPath", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestCacheDirPrivate: the cache is used only in a directory no one else
// can write to; elsewhere the kernel is decompressed and not cached.
func TestCacheDirPrivate(t *testing.T) {
	img, elf := cachedImage(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // dir does not exist yet
		wantErr string                         // "" when the cache is used
	}{
		{"missing: made 0700", func(*testing.T, string) {}, ""},
		{"yours, 0755", func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }, ""},
		{"world-writable", func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, "can be written by others"},
		{"group-writable, the user's own group", func(t *testing.T, dir string) { mkdir(t, dir, 0o770) }, ""},
		{"group-writable, another group", func(t *testing.T, dir string) {
			mkdir(t, dir, 0o770)
			if err := os.Chown(dir, os.Geteuid(), os.Getegid()+1); err != nil {
				t.Skipf("cannot give the directory another group: %v", err)
			}
		}, "can be written by others"},
		{"symlink", func(t *testing.T, dir string) {
			target := dir + ".target"
			mkdir(t, target, 0o700)
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		{"someone else's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give a directory away")
			}
			mkdir(t, dir, 0o755)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "belongs to uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			tt.setup(t, dir)
			c, err := DecompressCached(dir, img)
			if !bytes.Equal(c.ELF, elf) {
				t.Fatalf("DecompressCached = %d bytes, %v, want the %d-byte vmlinux either way", len(c.ELF), err, len(elf))
			}
			if tt.wantErr == "" {
				if err != nil || c.Path == "" {
					t.Fatalf("DecompressCached = path %q, %v, want it cached", c.Path, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, ErrNoFastPath) || c.Path != "" {
				t.Errorf("DecompressCached = path %q, %v, want no cache and an error containing %q (not ErrNoFastPath)", c.Path, err, tt.wantErr)
			}
		})
	}
	t.Run("made 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "cache")
		if _, err := DecompressCached(dir, img); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("Stat(%s) = %v, %v, want mode 0700", d, fi.Mode().Perm(), err)
			}
		}
	})
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}
