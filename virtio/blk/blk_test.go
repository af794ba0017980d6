package blk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// harness runs a device on a queue a queuetest driver fills.
type harness struct {
	t    testing.TB
	dev  *Device
	path string
	d    *queuetest.Driver
	kick chan struct{}
	irq  chan int
	bad  chan error
}

func newHarness(t testing.TB, size int64, o Options) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "disk.img"), kick: make(chan struct{}, 1), irq: make(chan int, 64), bad: make(chan error, 1)}
	if err := os.WriteFile(h.path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(h.path, size); err != nil {
		t.Fatal(err)
	}
	o.Path = h.path
	var err error
	if h.dev, err = Open(o); err != nil {
		t.Fatal(err)
	}
	mem := queuetest.NewMemory(4 << 20)
	cfg := queuetest.Layout(QueueSize, 0x1000, 0)
	cfg.Indirect = true
	q, err := queue.New(mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.d = queuetest.New(mem, cfg, 0x10000, 4<<20-0x10000)
	err = h.dev.Activate(virtio.Activation{
		Mem: mem, Features: h.dev.Features(), Queues: []*queue.Queue{q}, Kicks: []<-chan struct{}{h.kick},
		Interrupt: func(i int) { h.irq <- i }, ConfigChanged: func() {},
		Broken: func(err error) { h.bad <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.dev.Reset()
		if err := h.dev.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func header(typ uint32, sector uint64) []byte {
	b := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(b, typ)
	binary.LittleEndian.PutUint64(b[8:], sector)
	return b
}

// do sends one request and waits for it; it returns the used length and
// the addresses of the buffers.
func (h *harness) do(bufs ...queuetest.Buf) (uint32, []uint64) {
	h.t.Helper()
	head, addrs := h.d.Chain(bufs...)
	h.d.Publish(head)
	h.kick <- struct{}{}
	select {
	case <-h.irq:
	case err := <-h.bad:
		h.t.Fatalf("the device found the driver broken: %v", err)
	case <-time.After(10 * time.Second):
		h.t.Fatal("no interrupt within 10 s")
	}
	used := h.d.TakeUsed()
	if len(used) != 1 || used[0].ID != uint32(head) {
		h.t.Fatalf("used = %+v, want one entry for head %d", used, head)
	}
	var out []uint64
	for _, a := range addrs {
		out = append(out, uint64(a))
	}
	return used[0].Len, out
}

// status sends a request whose last buffer is the status byte and returns
// the status.
func (h *harness) status(bufs ...queuetest.Buf) byte {
	h.t.Helper()
	bufs = append(bufs, queuetest.Buf{Len: 1, Write: true})
	_, addrs := h.do(bufs...)
	return h.d.Read(memAddr(addrs[len(addrs)-1]), 1)[0]
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestWriteFlushRead(t *testing.T) {
	h := newHarness(t, 1<<20, Options{})
	data := pattern(3*SectorSize, 0x5a)
	// A write split across buffers that do not follow sector bounds.
	st := h.status(queuetest.Buf{Data: header(TypeOut, 8)}, queuetest.Buf{Data: data[:100]}, queuetest.Buf{Data: data[100:]})
	if st != StatusOK {
		t.Fatalf("write status = %d, want OK", st)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeFlush, 0)}); st != StatusOK {
		t.Fatalf("flush status = %d, want OK", st)
	}
	file, err := os.ReadFile(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file[8*SectorSize:11*SectorSize], data) {
		t.Errorf("the file at sector 8 does not hold what the guest wrote")
	}
	n, addrs := h.do(queuetest.Buf{Data: header(TypeIn, 8)}, queuetest.Buf{Len: 1000, Write: true}, queuetest.Buf{Len: 3*SectorSize - 1000, Write: true}, queuetest.Buf{Len: 1, Write: true})
	got := append(h.d.Read(memAddr(addrs[1]), 1000), h.d.Read(memAddr(addrs[2]), 3*SectorSize-1000)...)
	if n != 3*SectorSize+1 || !bytes.Equal(got, data) || h.d.Read(memAddr(addrs[3]), 1)[0] != StatusOK {
		t.Errorf("read: used len %d, data equal %v, want %d and true", n, bytes.Equal(got, data), 3*SectorSize+1)
	}
}

func TestReadOnly(t *testing.T) {
	h := newHarness(t, 1<<20, Options{ReadOnly: true})
	if h.dev.Features()&FeatureRO == 0 || h.dev.Features()&FeatureDiscard != 0 {
		t.Errorf("features %#x: want RO and no DISCARD", h.dev.Features())
	}
	tests := []struct {
		name string
		req  []byte
		data []byte
	}{
		{"write", header(TypeOut, 0), make([]byte, SectorSize)},
		{"discard", header(TypeDiscard, 0), segment(0, 8, 0)},
		{"write zeroes", header(TypeWriteZeroes, 0), segment(0, 8, 1)},
	}
	for _, tt := range tests {
		if st := h.status(queuetest.Buf{Data: tt.req}, queuetest.Buf{Data: tt.data}); st != StatusIOErr {
			t.Errorf("%s on a read-only drive: status %d, want IOERR", tt.name, st)
		}
	}
	if st := h.status(queuetest.Buf{Data: header(TypeIn, 0)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusOK {
		t.Errorf("read on a read-only drive: status %d, want OK", st)
	}
}

func segment(sector uint64, n uint32, flags uint32) []byte {
	b := make([]byte, segmentSize)
	binary.LittleEndian.PutUint64(b, sector)
	binary.LittleEndian.PutUint32(b[8:], n)
	binary.LittleEndian.PutUint32(b[12:], flags)
	return b
}

// TestDiscardMakesHoles: DISCARD and WRITE_ZEROES with unmap punch holes
// (SEEK_HOLE finds them); WRITE_ZEROES reads back as zeros.
func TestDiscardMakesHoles(t *testing.T) {
	h := newHarness(t, 1<<20, Options{})
	data := pattern(256<<10, 1)
	if st := h.status(queuetest.Buf{Data: header(TypeOut, 0)}, queuetest.Buf{Data: data}); st != StatusOK {
		t.Fatalf("write status %d", st)
	}
	f, err := os.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hole := func(from int64) int64 {
		off, err := unix.Seek(int(f.Fd()), from, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	if got := hole(0); got != 256<<10 {
		t.Fatalf("first hole at %d before discarding, want %d (the end of the data)", got, 256<<10)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeDiscard, 0)}, queuetest.Buf{Data: segment(64<<10/SectorSize, 64<<10/SectorSize, 0)}); st != StatusOK {
		t.Fatalf("discard status %d", st)
	}
	if got := hole(0); got != 64<<10 {
		t.Errorf("after discarding [64K, 128K): first hole at %d, want %d", got, 64<<10)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeWriteZeroes, 0)}, queuetest.Buf{Data: segment(160<<10/SectorSize, 32<<10/SectorSize, segmentUnmap)}); st != StatusOK {
		t.Fatalf("write zeroes status %d", st)
	}
	if got := hole(128 << 10); got != 160<<10 {
		t.Errorf("after WRITE_ZEROES with unmap at 160K: hole from 128K at %d, want %d", got, 160<<10)
	}
	_, addrs := h.do(queuetest.Buf{Data: header(TypeIn, 64<<10/SectorSize)}, queuetest.Buf{Len: 128 << 10, Write: true}, queuetest.Buf{Len: 1, Write: true})
	got := h.d.Read(memAddr(addrs[1]), 128<<10)
	want := append(make([]byte, 64<<10), data[128<<10:192<<10]...)
	copy(want[96<<10:], make([]byte, 32<<10)) // [160K, 192K) zeroed
	if !bytes.Equal(got, want) {
		t.Errorf("reading [64K, 192K) back does not give zeros where the holes are and the data elsewhere")
	}
}

func TestGetID(t *testing.T) {
	h := newHarness(t, 1<<20, Options{ID: "govmm-disk-0"})
	n, addrs := h.do(queuetest.Buf{Data: header(TypeGetID, 0)}, queuetest.Buf{Len: IDBytes, Write: true}, queuetest.Buf{Len: 1, Write: true})
	if got := h.d.Read(memAddr(addrs[1]), IDBytes); n != IDBytes+1 || string(bytes.TrimRight(got, "\x00")) != "govmm-disk-0" {
		t.Errorf("GET_ID = %q (used %d), want \"govmm-disk-0\" padded with NULs (used 21)", got, n)
	}
}

// TestBadRequests: a malformed request gets an error status, and the
// device goes on serving.
func TestBadRequests(t *testing.T) {
	h := newHarness(t, 64<<10, Options{}) // 128 sectors
	tests := []struct {
		name string
		bufs []queuetest.Buf
		want byte
	}{
		{"short header", []queuetest.Buf{{Data: []byte{1, 0, 0}}}, StatusIOErr},
		{"unknown type", []queuetest.Buf{{Data: header(99, 0)}}, StatusUnsupp},
		{"read past the end", []queuetest.Buf{{Data: header(TypeIn, 127)}, {Len: 2 * SectorSize, Write: true}}, StatusIOErr},
		{"read at a sector that overflows", []queuetest.Buf{{Data: header(TypeIn, 1<<62)}, {Len: SectorSize, Write: true}}, StatusIOErr},
		{"write past the end", []queuetest.Buf{{Data: header(TypeOut, 128)}, {Data: make([]byte, SectorSize)}}, StatusIOErr},
		{"read of a partial sector", []queuetest.Buf{{Data: header(TypeIn, 0)}, {Len: 100, Write: true}}, StatusIOErr},
		{"write of a partial sector", []queuetest.Buf{{Data: header(TypeOut, 0)}, {Data: make([]byte, 100)}}, StatusIOErr},
		{"discard with reserved flags", []queuetest.Buf{{Data: header(TypeDiscard, 0)}, {Data: segment(0, 1, 4)}}, StatusUnsupp},
		{"discard past the end", []queuetest.Buf{{Data: header(TypeDiscard, 0)}, {Data: segment(100, 64, 0)}}, StatusIOErr},
		{"discard with a torn range", []queuetest.Buf{{Data: header(TypeDiscard, 0)}, {Data: make([]byte, 10)}}, StatusUnsupp},
		{"discard with too many ranges", []queuetest.Buf{{Data: header(TypeDiscard, 0)}, {Data: make([]byte, (maxDiscardSeg+1)*segmentSize)}}, StatusIOErr},
	}
	for _, tt := range tests {
		if st := h.status(tt.bufs...); st != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, st, tt.want)
		}
	}
	// A request with no writable byte cannot be answered; it comes back
	// unused and the device goes on.
	if n, _ := h.do(queuetest.Buf{Data: header(TypeIn, 0)}); n != 0 {
		t.Errorf("a request without a status byte came back with %d bytes, want 0", n)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeFlush, 0)}); st != StatusOK {
		t.Errorf("flush after the bad requests: status %d, want OK", st)
	}
	if h.dev.Errors.Load() != uint64(len(tests))+1 {
		t.Errorf("Errors = %d, want %d", h.dev.Errors.Load(), len(tests)+1)
	}
}

func TestParseCache(t *testing.T) {
	for in, want := range map[string]Cache{"": CacheWriteback, "writeback": CacheWriteback, "writethrough": CacheWritethrough, "unsafe": CacheUnsafe} {
		if got, err := ParseCache(in); got != want || err != nil {
			t.Errorf("ParseCache(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseCache("none"); err == nil {
		t.Errorf("ParseCache(none) = nil error, want one naming the choices")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing"), dir} {
		if d, err := Open(Options{Path: p}); err == nil {
			d.Close()
			t.Errorf("Open(%s) = nil error, want one", p)
		}
	}
}
