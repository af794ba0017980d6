package testvm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// initramfs writes the VM's initramfs, an uncompressed newc cpio archive, to
// w: the directories /init needs, busybox, the modules, /init itself and the
// Files at their own absolute paths. It returns the bytes of file data
// written, which the VM must hold in RAM.
func initramfs(w io.Writer, c Config, init string) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	a := &archive{cpio: newCPIOWriter(bw), seen: map[string]bool{}}
	for _, d := range []string{"/bin", "/dev", "/proc", "/sys", "/tmp", guestModulesDir} {
		if err := a.dir(d, 0o755); err != nil {
			return 0, err
		}
	}
	if err := a.hostFile(guestBusybox, c.Busybox, 0o755); err != nil {
		return 0, fmt.Errorf("testvm: busybox: %w", err)
	}
	for i, m := range c.Modules {
		if err := a.hostFile(guestModulePath(i, m), m, 0o644); err != nil {
			return 0, fmt.Errorf("testvm: kernel module: %w", err)
		}
	}
	if err := a.add("/bin/sh", modeSymlink|0o777, int64(len("busybox")), strings.NewReader("busybox")); err != nil {
		return 0, err
	}
	if err := a.data("/init", 0o755, []byte(init)); err != nil {
		return 0, err
	}
	for _, f := range c.Files {
		if !filepath.IsAbs(f) {
			return 0, fmt.Errorf("testvm: file %q: give an absolute path (it keeps its path inside the VM)", f)
		}
		if err := a.tree(filepath.Clean(f)); err != nil {
			return 0, fmt.Errorf("testvm: copy %s into the VM: %w", f, err)
		}
	}
	if err := a.cpio.close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("testvm: write initramfs: %w", err)
	}
	return a.size, nil
}

// archive adds entries to a cpio archive, each path once, parents first.
type archive struct {
	cpio *cpioWriter
	seen map[string]bool // absolute paths already written
	size int64           // file data written
}

// add writes one entry unless its path is already there, after its parent
// directories.
func (a *archive) add(p string, mode uint32, size int64, r io.Reader) error {
	if a.seen[p] {
		return nil
	}
	if parent := filepath.Dir(p); parent != "/" && !a.seen[parent] {
		if err := a.dir(parent, 0o755); err != nil {
			return err
		}
	}
	a.seen[p] = true
	a.size += size
	return a.cpio.writeEntry(strings.TrimPrefix(p, "/"), mode, size, r)
}

func (a *archive) dir(p string, perm uint32) error {
	return a.add(p, modeDir|perm, 0, nil)
}

func (a *archive) data(p string, perm uint32, b []byte) error {
	return a.add(p, modeRegular|perm, int64(len(b)), bytes.NewReader(b))
}

// hostFile adds the host's regular file src at p.
func (a *archive) hostFile(p, src string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	return a.add(p, modeRegular|perm, st.Size(), f)
}

// tree adds root, a file or a directory (followed if it is a symbolic link),
// and everything under it, keeping symbolic links inside it as links.
func (a *archive) tree(root string) error {
	if a.seen[root] {
		return nil // given twice, or a link pointing back
	}
	lst, err := os.Lstat(root)
	if err != nil {
		return err
	}
	if lst.Mode()&fs.ModeSymlink != 0 {
		// Keep the link and copy what it points to, so both paths work.
		target, err := os.Readlink(root)
		if err != nil {
			return err
		}
		if err := a.add(root, modeSymlink|0o777, int64(len(target)), strings.NewReader(target)); err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(root), target)
		}
		return a.tree(filepath.Clean(target))
	}
	st := lst
	if !st.IsDir() {
		return a.hostFile(root, root, uint32(st.Mode().Perm()))
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		perm := uint32(info.Mode().Perm())
		switch {
		case info.IsDir():
			return a.dir(p, perm)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return a.add(p, modeSymlink|0o777, int64(len(target)), strings.NewReader(target))
		case info.Mode().IsRegular():
			return a.hostFile(p, p, perm)
		default:
			return nil // sockets, pipes, devices: nothing a test needs
		}
	})
}
