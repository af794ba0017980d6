// Package blk is virtio-blk (virtio 1.2, 5.2): a disk backed by a host
// file (or block device), served on a goroutine of its own with preadv
// and pwritev straight into guest memory. READ, WRITE, FLUSH (fdatasync,
// so it reaches the disk), GET_ID, DISCARD and WRITE_ZEROES (holes
// punched with fallocate) are handled; a read-only drive refuses writes
// with VIRTIO_BLK_S_IOERR, and a malformed request gets an error status.
//
// The capacity is the file's size rounded down to 512-byte sectors, as
// Firecracker's is: an empty file is a disk of 0 sectors (a placeholder
// that orchestrators later swap for the real image with Replace), and
// every READ, WRITE, DISCARD or WRITE_ZEROES beyond the capacity is
// answered VIRTIO_BLK_S_IOERR (5.2.4, 5.2.6.1).
package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
)

// Feature bits (5.2.3).
const (
	FeatureSegMax      = 1 << 2  // VIRTIO_BLK_F_SEG_MAX
	FeatureRO          = 1 << 5  // VIRTIO_BLK_F_RO
	FeatureBlkSize     = 1 << 6  // VIRTIO_BLK_F_BLK_SIZE
	FeatureFlush       = 1 << 9  // VIRTIO_BLK_F_FLUSH
	FeatureDiscard     = 1 << 13 // VIRTIO_BLK_F_DISCARD
	FeatureWriteZeroes = 1 << 14 // VIRTIO_BLK_F_WRITE_ZEROES
)

// QueueSize is the request queue's size.
const QueueSize = 128

// Limits offered in the configuration space.
const (
	segMax            = QueueSize - 2 // data buffers in a request: all but header and status
	maxDiscardSectors = 1 << 22       // 2 GiB a range
	maxDiscardSeg     = 32
	discardAlignment  = 8 // sectors: 4 KiB, the host's page
	configSize        = 60
	maxIOV            = 1024 // IOV_MAX
)

// Cache says how writes reach the host's disk.
type Cache int

const (
	// CacheWriteback: writes go to the host's page cache; FLUSH calls
	// fdatasync, so what the guest flushed survives a host crash.
	CacheWriteback Cache = iota + 1
	// CacheWritethrough: the file is opened O_DSYNC; every write is on
	// the disk when the guest sees it done.
	CacheWritethrough
	// CacheUnsafe: FLUSH does nothing (for throw-away disks).
	CacheUnsafe
)

// ParseCache reads a cache= word.
func ParseCache(s string) (Cache, error) {
	switch s {
	case "", "writeback":
		return CacheWriteback, nil
	case "writethrough":
		return CacheWritethrough, nil
	case "unsafe":
		return CacheUnsafe, nil
	}
	return 0, fmt.Errorf("cache=%s: give writeback (the default: flushes reach the disk), writethrough (every write does) or unsafe (flushes are ignored)", s)
}

func (c Cache) String() string {
	switch c {
	case CacheWritethrough:
		return "writethrough"
	case CacheUnsafe:
		return "unsafe"
	}
	return "writeback"
}

// Options describe one drive.
type Options struct {
	Path     string
	ReadOnly bool
	Cache    Cache
	// ID is what GET_ID answers (at most 20 bytes); Linux shows it as
	// /sys/block/vdX/serial. Empty: the file's base name, cut to 20.
	ID string
}

// Device is one virtio-blk disk.
type Device struct {
	// ioMu is held while a request is served, and while Replace swaps
	// the backing file: a swap waits for the request in flight.
	ioMu sync.Mutex
	// mu guards f, opt, sectors and config against readers other than
	// the worker (the vCPUs reading the configuration space, Options);
	// they change only with ioMu and mu both held, so the worker, which
	// holds ioMu, reads them without mu.
	mu       sync.Mutex
	f        *os.File
	opt      Options
	sectors  uint64
	features uint64
	config   [configSize]byte
	workers  virtio.Workers
	zeros    []byte

	// Requests and Errors count requests served and those answered with
	// an error status.
	Requests, Errors atomic.Uint64
}

// Open opens the drive's file (read-only with ReadOnly) and returns the
// device. The file's size, rounded down to sectors, is the capacity.
func Open(o Options) (*Device, error) {
	if o.Cache == 0 {
		o.Cache = CacheWriteback
	}
	f, err := openFile(o)
	if err != nil {
		return nil, err
	}
	d, err := New(f, o)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return d, nil
}

// openFile opens o.Path as o asks: read-only with ReadOnly, O_DSYNC
// with CacheWritethrough. A directory is refused.
func openFile(o Options) (*os.File, error) {
	flags := os.O_RDWR
	if o.ReadOnly {
		flags = os.O_RDONLY
	}
	if o.Cache == CacheWritethrough {
		flags |= unix.O_DSYNC
	}
	f, err := os.OpenFile(o.Path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrPermission) && !o.ReadOnly {
			return nil, fmt.Errorf("drive %s: %w (give readonly=on to use it without writing)", o.Path, err)
		}
		return nil, fmt.Errorf("drive %s: %w", o.Path, err)
	}
	if st, err := f.Stat(); err != nil {
		return nil, errors.Join(fmt.Errorf("drive %s: %w", o.Path, err), f.Close())
	} else if st.IsDir() {
		return nil, errors.Join(fmt.Errorf("drive %s: a directory, not a disk image", o.Path), f.Close())
	}
	return f, nil
}

// fileSectors is f's capacity: its size rounded down to sectors, as
// Firecracker counts it (a tail shorter than a sector is not seen).
func fileSectors(f *os.File, path string) (uint64, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("drive %s: its size: %w", path, err)
	}
	if size < 0 {
		return 0, fmt.Errorf("drive %s: a size of %d bytes", path, size)
	}
	return uint64(size) / SectorSize, nil
}

// New makes a device on an open file; the device owns it from then on.
// An empty file (or one shorter than a sector) is a disk of 0 sectors.
func New(f *os.File, o Options) (*Device, error) {
	sectors, err := fileSectors(f, o.Path)
	if err != nil {
		return nil, err
	}
	if o.ID == "" {
		o.ID = baseName(o.Path)
	}
	if len(o.ID) > IDBytes {
		o.ID = o.ID[:IDBytes]
	}
	d := &Device{f: f, opt: o, sectors: sectors}
	d.features = FeatureSegMax | FeatureBlkSize | FeatureFlush | queue.FeatureIndirectDesc | queue.FeatureEventIdx
	if o.ReadOnly {
		d.features |= FeatureRO
	} else {
		d.features |= FeatureDiscard | FeatureWriteZeroes
	}
	d.buildConfig()
	return d, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// buildConfig writes struct virtio_blk_config (5.2.4).
func (d *Device) buildConfig() {
	c := d.config[:]
	le := binary.LittleEndian
	le.PutUint64(c[0:], d.sectors)   // capacity
	le.PutUint32(c[12:], segMax)     // seg_max
	le.PutUint32(c[20:], SectorSize) // blk_size
	le.PutUint16(c[34:], 1)          // num_queues
	le.PutUint32(c[36:], maxDiscardSectors)
	le.PutUint32(c[40:], maxDiscardSeg)
	le.PutUint32(c[44:], discardAlignment)
	le.PutUint32(c[48:], maxDiscardSectors) // max_write_zeroes_sectors
	le.PutUint32(c[52:], maxDiscardSeg)     // max_write_zeroes_seg
	c[56] = 1                               // write_zeroes_may_unmap
}

// Sectors is the capacity in 512-byte sectors.
func (d *Device) Sectors() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sectors
}

// Options are the drive's options; Path is the file behind it now.
func (d *Device) Options() Options {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opt
}

// Replace puts the file at path behind the disk, or re-reads the size of
// the same file (a resize), while the device runs, as Firecracker's
// PATCH /drives does: the request in flight finishes (its writes flushed
// to the old file, unless cache=unsafe), later requests go to the new
// file, and the capacity in the configuration space (5.2.4) becomes the
// new file's size in whole sectors. changed, if not nil, is then called
// before any driver's read of the configuration space can see the new
// capacity: give the transport's ConfigChanged, which bumps
// config_generation (so a driver's multi-part read of capacity retries,
// 4.1.4.3.1) and sends the configuration change notification (4.1.4.5,
// 4.1.5.4), on which Linux re-reads the capacity.
//
// The disk stays read-only or writable, as the driver negotiated it
// (VIRTIO_BLK_F_RO, 5.2.3): readOnly must be what the disk was opened
// with. On an error the old file stays.
func (d *Device) Replace(path string, readOnly bool, changed func()) error {
	d.mu.Lock()
	o := d.opt
	d.mu.Unlock()
	if readOnly != o.ReadOnly {
		mode := "writable"
		if o.ReadOnly {
			mode = "read-only"
		}
		return fmt.Errorf("drive %s is %s and stays so while the guest runs: its driver negotiated features with VIRTIO_BLK_F_RO as it is (5.2.3)", o.Path, mode)
	}
	o.Path = path
	f, err := openFile(o)
	if err != nil {
		return err
	}
	sectors, err := fileSectors(f, path)
	if err != nil {
		return errors.Join(err, f.Close())
	}
	d.ioMu.Lock()
	if err := d.flushLocked(); err != nil {
		d.ioMu.Unlock()
		return errors.Join(err, f.Close())
	}
	d.mu.Lock()
	old := d.f
	d.f, d.sectors, d.opt.Path = f, sectors, path
	binary.LittleEndian.PutUint64(d.config[0:], sectors) // capacity
	if changed != nil {
		changed()
	}
	d.mu.Unlock()
	d.ioMu.Unlock()
	if old != f {
		if err := old.Close(); err != nil {
			return fmt.Errorf("drive %s: closing the file it had: %w", path, err)
		}
	}
	return nil
}

// Flush makes what the device wrote reach the disk (fdatasync), as a
// FLUSH request does (5.2.6.2): a pause that may hand the disk to
// another host (a migration over shared storage) calls it. Nothing with
// cache=unsafe or a read-only disk.
func (d *Device) Flush() error {
	d.ioMu.Lock()
	defer d.ioMu.Unlock()
	return d.flushLocked()
}

// flushLocked is Flush; ioMu is held.
func (d *Device) flushLocked() error {
	if d.opt.Cache == CacheUnsafe || d.opt.ReadOnly {
		return nil
	}
	if err := unix.Fdatasync(int(d.f.Fd())); err != nil {
		return fmt.Errorf("drive %s: flushing it: %w", d.opt.Path, err)
	}
	return nil
}

// Close closes the file; the device must be reset first.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Close()
}

func (d *Device) Type() uint16 { return virtio.TypeBlock }

func (d *Device) Features() uint64 { return d.features }

func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

func (d *Device) ReadConfig(off uint64, p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range p {
		p[i] = 0
		if o := off + uint64(i); o < configSize {
			p[i] = d.config[o]
		}
	}
}

// WriteConfig: only writeback is writable, with CONFIG_WCE, which is not
// offered.
func (d *Device) WriteConfig(off uint64, p []byte) {}

// Activate starts the request queue's worker.
func (d *Device) Activate(a virtio.Activation) error {
	d.workers.Start()
	var iov [][]byte
	d.workers.Go(func(stop <-chan struct{}) {
		virtio.Serve(stop, a, 0, func(c *queue.Chain) (uint32, error) { return d.serve(c, &iov) })
	})
	return nil
}

// Reset stops the worker; a request in progress finishes first.
func (d *Device) Reset() { d.workers.Stop() }

// serve answers one request (5.2.6). Its status is the last writable
// byte; a chain without one cannot be answered and is returned unused.
func (d *Device) serve(c *queue.Chain, iov *[][]byte) (uint32, error) {
	d.ioMu.Lock()
	defer d.ioMu.Unlock()
	d.Requests.Add(1)
	wl := c.WritableLen()
	if wl == 0 {
		d.Errors.Add(1)
		return 0, nil
	}
	status, written := d.handle(c, wl-1, iov)
	if status != StatusOK {
		d.Errors.Add(1)
		written = 0
	}
	queue.CopyTo(c.Writable, wl-1, []byte{status})
	return uint32(written + 1), nil
}

// handle does the request; dataIn is the writable bytes before the
// status. It returns the status and the bytes written for the driver.
func (d *Device) handle(c *queue.Chain, dataIn uint64, iov *[][]byte) (status byte, written uint64) {
	var hb [headerSize]byte
	if queue.CopyFrom(hb[:], c.Readable, 0) < headerSize {
		return StatusIOErr, 0
	}
	h, _ := ParseHeader(hb[:])
	rl := c.ReadableLen()
	switch h.Type {
	case TypeIn:
		if dataIn%SectorSize != 0 {
			return StatusIOErr, 0
		}
		off, n, err := byteRange(h.Sector, dataIn/SectorSize, d.sectors)
		if err != nil {
			return StatusIOErr, 0
		}
		*iov = queue.Slices((*iov)[:0], c.Writable, 0, n)
		if err := d.readv(*iov, int64(off)); err != nil {
			return StatusIOErr, 0
		}
		return StatusOK, n
	case TypeOut:
		if d.opt.ReadOnly {
			return StatusIOErr, 0 // 5.2.6.2: a write to a VIRTIO_BLK_F_RO device
		}
		data := rl - headerSize
		if data%SectorSize != 0 {
			return StatusIOErr, 0
		}
		off, n, err := byteRange(h.Sector, data/SectorSize, d.sectors)
		if err != nil {
			return StatusIOErr, 0
		}
		*iov = queue.Slices((*iov)[:0], c.Readable, headerSize, n)
		if err := d.writev(*iov, int64(off)); err != nil {
			return StatusIOErr, 0
		}
		return StatusOK, 0
	case TypeFlush:
		if d.opt.Cache == CacheUnsafe || d.opt.ReadOnly {
			return StatusOK, 0
		}
		if err := unix.Fdatasync(int(d.f.Fd())); err != nil {
			return StatusIOErr, 0
		}
		return StatusOK, 0
	case TypeGetID:
		id := make([]byte, IDBytes) // NUL-padded when shorter (5.2.6)
		copy(id, d.opt.ID)
		if dataIn < IDBytes {
			id = id[:dataIn]
		}
		return StatusOK, uint64(queue.CopyTo(c.Writable, 0, id))
	case TypeDiscard, TypeWriteZeroes:
		if d.opt.ReadOnly {
			return StatusIOErr, 0
		}
		if rl-headerSize > maxDiscardSeg*segmentSize {
			return StatusIOErr, 0
		}
		b := make([]byte, rl-headerSize)
		queue.CopyFrom(b, c.Readable, headerSize)
		segs, err := ParseSegments(b, maxDiscardSeg)
		if err != nil {
			return StatusUnsupp, 0 // 5.2.6.2: reserved flags or too many ranges
		}
		for _, s := range segs {
			if s.Sectors > maxDiscardSectors {
				return StatusIOErr, 0
			}
			off, n, err := byteRange(s.Sector, uint64(s.Sectors), d.sectors)
			if err != nil {
				return StatusIOErr, 0
			}
			if err := d.deallocate(h.Type == TypeWriteZeroes, s.Unmap, int64(off), int64(n)); err != nil {
				return StatusIOErr, 0
			}
		}
		return StatusOK, 0
	}
	return StatusUnsupp, 0
}

// readv fills iov from the file at off; past the file's end it reads
// zeros.
func (d *Device) readv(iov [][]byte, off int64) error {
	fd := int(d.f.Fd())
	for len(iov) > 0 {
		batch := iov
		if len(batch) > maxIOV {
			batch = batch[:maxIOV]
		}
		n, err := unix.Preadv(fd, batch, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			for _, b := range iov {
				clear(b)
			}
			return nil
		}
		off += int64(n)
		iov = advance(iov, n)
	}
	return nil
}

// writev writes iov to the file at off.
func (d *Device) writev(iov [][]byte, off int64) error {
	fd := int(d.f.Fd())
	for len(iov) > 0 {
		batch := iov
		if len(batch) > maxIOV {
			batch = batch[:maxIOV]
		}
		n, err := unix.Pwritev(fd, batch, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		iov = advance(iov, n)
	}
	return nil
}

// advance drops n bytes from the front of iov (it rewrites iov's first
// remaining element in place).
func advance(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if len(iov) > 0 && n > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// deallocate discards a range, or writes zeros over it (a hole where
// unmap allows, or where the file system cannot zero a range otherwise).
func (d *Device) deallocate(zeroes, unmap bool, off, n int64) error {
	fd := int(d.f.Fd())
	punch := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
	if !zeroes {
		// A discard is advice (5.2.6.2): a file system that cannot punch
		// holes loses nothing by ignoring it.
		if err := unix.Fallocate(fd, punch, off, n); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		return nil
	}
	mode := uint32(unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE)
	if unmap {
		mode = punch
	}
	err := unix.Fallocate(fd, mode, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) && !unmap {
		err = unix.Fallocate(fd, punch, off, n)
	}
	if !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	// Neither: write the zeros.
	if d.zeros == nil {
		d.zeros = make([]byte, 64<<10)
	}
	for n > 0 {
		k := min(n, int64(len(d.zeros)))
		if _, err := d.f.WriteAt(d.zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
