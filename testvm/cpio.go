package testvm

import (
	"fmt"
	"io"
)

// File modes as cpio(5) and stat(2) spell them.
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modePerm    = 0o7777
)

// cpioMaxSize is the largest file size a newc header can carry (8 hex digits).
const cpioMaxSize = 1<<32 - 1

// cpioWriter writes a cpio archive in the "newc" format (SVR4 without CRC),
// the one the Linux kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst): each entry is
// a 110-byte ASCII header, the NUL-terminated name padded to 4 bytes, and
// the data padded to 4 bytes; a "TRAILER!!!" entry ends the archive.
type cpioWriter struct {
	w   io.Writer
	ino uint32
	off int64 // bytes written, for padding
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1}
}

// writeEntry writes one entry: name (without a leading "/"), mode (type and
// permission bits), and size bytes of data read from r (nil when size is 0).
func (c *cpioWriter) writeEntry(name string, mode uint32, size int64, r io.Reader) error {
	if size < 0 || size > cpioMaxSize {
		return fmt.Errorf("cpio: %s is %d bytes; newc holds at most 4 GiB per file", name, size)
	}
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	c.ino++
	if err := c.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if size > 0 {
		n, err := io.CopyN(c.w, r, size)
		c.off += n
		if err != nil {
			return fmt.Errorf("cpio: write %s: %w", name, err)
		}
	}
	return c.pad()
}

// close writes the trailer entry.
func (c *cpioWriter) close() error {
	return c.writeEntry("TRAILER!!!", 0, 0, nil)
}

func (c *cpioWriter) write(p []byte) error {
	n, err := c.w.Write(p)
	c.off += int64(n)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}

// pad writes NULs up to the next multiple of 4 bytes.
func (c *cpioWriter) pad() error {
	if r := c.off % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}
