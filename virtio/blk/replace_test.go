package blk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// capacity is the capacity field of the configuration space (5.2.4).
func capacity(d *Device) uint64 {
	var b [8]byte
	d.ReadConfig(0, b[:])
	return binary.LittleEndian.Uint64(b[:])
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEmptyDisk: an empty file is a disk of 0 sectors (Firecracker's and
// Kata's placeholder drives), and a file whose size is not a multiple of
// 512 shows its whole sectors only; I/O beyond the capacity is IOERR
// (5.2.6.1), while GET_ID and FLUSH still work.
func TestEmptyDisk(t *testing.T) {
	h := newHarness(t, 0, Options{})
	if h.dev.Sectors() != 0 || capacity(h.dev) != 0 {
		t.Fatalf("an empty file: Sectors %d, capacity %d, want 0 and 0", h.dev.Sectors(), capacity(h.dev))
	}
	for _, tt := range []struct {
		name string
		bufs []queuetest.Buf
	}{
		{"read of sector 0", []queuetest.Buf{{Data: header(TypeIn, 0)}, {Len: SectorSize, Write: true}}},
		{"write of sector 0", []queuetest.Buf{{Data: header(TypeOut, 0)}, {Data: make([]byte, SectorSize)}}},
		{"write zeroes", []queuetest.Buf{{Data: header(TypeWriteZeroes, 0)}, {Data: segment(0, 1, 0)}}},
		{"discard", []queuetest.Buf{{Data: header(TypeDiscard, 0)}, {Data: segment(0, 1, 0)}}},
	} {
		if st := h.status(tt.bufs...); st != StatusIOErr {
			t.Errorf("%s on a 0-sector disk: status %d, want IOERR", tt.name, st)
		}
	}
	if st := h.status(queuetest.Buf{Data: header(TypeFlush, 0)}); st != StatusOK {
		t.Errorf("flush on a 0-sector disk: status %d, want OK", st)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeGetID, 0)}, queuetest.Buf{Len: IDBytes, Write: true}); st != StatusOK {
		t.Errorf("GET_ID on a 0-sector disk: status %d, want OK", st)
	}
	if st, err := os.Stat(h.path); err != nil || st.Size() != 0 {
		t.Errorf("the empty file after the requests: %v, %v; want it still empty", st, err)
	}

	odd := newHarness(t, 3*SectorSize+100, Options{})
	if odd.dev.Sectors() != 3 || capacity(odd.dev) != 3 {
		t.Errorf("a file of 3 sectors and 100 bytes: Sectors %d, capacity %d, want 3", odd.dev.Sectors(), capacity(odd.dev))
	}
	if st := odd.status(queuetest.Buf{Data: header(TypeIn, 3)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusIOErr {
		t.Errorf("a read of the partial sector: status %d, want IOERR", st)
	}
	if st := odd.status(queuetest.Buf{Data: header(TypeIn, 2)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusOK {
		t.Errorf("a read of the last whole sector: status %d, want OK", st)
	}
}

// TestReplace: Replace swaps a running disk's file (a placeholder for the
// real image, as PATCH /drives does): the capacity in the configuration
// space is the new file's, the change is signalled once, reads and
// writes go to the new file, and the old one is left as it was.
func TestReplace(t *testing.T) {
	h := newHarness(t, 0, Options{})
	img := filepath.Join(t.TempDir(), "image")
	content := pattern(8*SectorSize+77, 0x33)
	writeFile(t, img, content)
	var changes atomic.Int32
	changed := func() {
		changes.Add(1)
		// The new capacity is in place when the transport is told.
		if got := binary.LittleEndian.Uint64(h.dev.config[:]); got != 8 {
			t.Errorf("capacity when changed is called: %d, want 8", got)
		}
	}
	if err := h.dev.Replace(img, false, changed); err != nil {
		t.Fatal(err)
	}
	if changes.Load() != 1 || capacity(h.dev) != 8 || h.dev.Sectors() != 8 || h.dev.Options().Path != img {
		t.Fatalf("after Replace: %d notifications, capacity %d, Sectors %d, path %s; want 1, 8, 8, %s", changes.Load(), capacity(h.dev), h.dev.Sectors(), h.dev.Options().Path, img)
	}
	n, addrs := h.do(queuetest.Buf{Data: header(TypeIn, 1)}, queuetest.Buf{Len: 2 * SectorSize, Write: true}, queuetest.Buf{Len: 1, Write: true})
	if got := h.d.Read(memAddr(addrs[1]), 2*SectorSize); n != 2*SectorSize+1 || !bytes.Equal(got, content[SectorSize:3*SectorSize]) {
		t.Errorf("reading sectors 1-2 of the new file: used %d, equal %v", n, bytes.Equal(got, content[SectorSize:3*SectorSize]))
	}
	data := pattern(SectorSize, 0xc4)
	if st := h.status(queuetest.Buf{Data: header(TypeOut, 7)}, queuetest.Buf{Data: data}); st != StatusOK {
		t.Fatalf("write to the new file: status %d", st)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeIn, 8)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusIOErr {
		t.Errorf("a read past the new capacity: status %d, want IOERR", st)
	}
	if got, _ := os.ReadFile(img); !bytes.Equal(got[7*SectorSize:8*SectorSize], data) {
		t.Errorf("the write did not reach the new file")
	}
	if st, _ := os.Stat(h.path); st.Size() != 0 {
		t.Errorf("the placeholder is %d bytes after the swap, want 0", st.Size())
	}

	// A resize of the same file: re-read, shown, signalled.
	if err := os.Truncate(img, 64*SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := h.dev.Replace(img, false, func() { changes.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if changes.Load() != 2 || capacity(h.dev) != 64 {
		t.Errorf("after a resize: %d notifications, capacity %d; want 2, 64", changes.Load(), capacity(h.dev))
	}
	if st := h.status(queuetest.Buf{Data: header(TypeIn, 63)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusOK {
		t.Errorf("a read of the grown disk's last sector: status %d, want OK", st)
	}

	// Refused, with the disk unchanged: a missing file, a directory, a
	// change of read-only.
	for _, tt := range []struct {
		path     string
		readOnly bool
		want     string
	}{
		{filepath.Join(t.TempDir(), "missing"), false, "no such file"},
		{t.TempDir(), false, "directory"},
		{img, true, "writable and stays so"},
	} {
		err := h.dev.Replace(tt.path, tt.readOnly, func() { changes.Add(1) })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Replace(%s, readOnly %v) = %v, want an error saying %q", tt.path, tt.readOnly, err, tt.want)
		}
	}
	if changes.Load() != 2 || capacity(h.dev) != 64 || h.dev.Options().Path != img {
		t.Errorf("after refused swaps: %d notifications, capacity %d, path %s; want 2, 64, %s", changes.Load(), capacity(h.dev), h.dev.Options().Path, img)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeIn, 0)}, queuetest.Buf{Len: SectorSize, Write: true}); st != StatusOK {
		t.Errorf("a read after the refused swaps: status %d, want OK", st)
	}
}

// TestReplaceReadOnly: a read-only disk takes a read-only file (one
// govmm could not open for writing) and stays read-only.
func TestReplaceReadOnly(t *testing.T) {
	h := newHarness(t, 0, Options{ReadOnly: true})
	img := filepath.Join(t.TempDir(), "ro.img")
	writeFile(t, img, pattern(4*SectorSize, 1))
	if err := os.Chmod(img, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := h.dev.Replace(img, false, nil); err == nil {
		t.Errorf("Replace(readOnly false) on a read-only disk = nil, want an error")
	}
	if err := h.dev.Replace(img, true, nil); err != nil {
		t.Fatal(err)
	}
	if h.dev.Sectors() != 4 || !h.dev.Options().ReadOnly {
		t.Errorf("Sectors %d, read-only %v; want 4, true", h.dev.Sectors(), h.dev.Options().ReadOnly)
	}
	if st := h.status(queuetest.Buf{Data: header(TypeOut, 0)}, queuetest.Buf{Data: make([]byte, SectorSize)}); st != StatusIOErr {
		t.Errorf("a write after the swap: status %d, want IOERR", st)
	}
}

// TestReplaceUnderLoad swaps the file again and again while the queue
// holds many requests: each request is served whole by one file or the
// other (a read is never half old, half new), every request is
// answered, and the device never finds the driver broken.
func TestReplaceUnderLoad(t *testing.T) {
	h := newHarness(t, 16*SectorSize, Options{})
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	fill := func(path string, v byte) []byte {
		data := bytes.Repeat([]byte{v}, 16*SectorSize)
		writeFile(t, path, data)
		return data
	}
	fill(a, 0xaa)
	fill(b, 0xbb)
	const reqs = 32 // 3 descriptors each: within the 128-entry queue
	for round := range 5 {
		h.d.ResetData()
		type req struct {
			head uint16
			data uint64
		}
		var rs []req
		for i := range reqs {
			head, addrs := h.d.Chain(queuetest.Buf{Data: header(TypeIn, uint64(i%8))}, queuetest.Buf{Len: 8 * SectorSize, Write: true}, queuetest.Buf{Len: 1, Write: true})
			h.d.Publish(head)
			rs = append(rs, req{head, uint64(addrs[1])})
		}
		h.kick <- struct{}{}
		done := make(chan error)
		go func() {
			var err error
			for i := range 20 {
				p := a
				if (i+round)%2 == 1 {
					p = b
				}
				if err = h.dev.Replace(p, false, nil); err != nil {
					break
				}
			}
			done <- err
		}()
		var used []queuetest.Used
		deadline := time.After(10 * time.Second)
		for len(used) < reqs {
			select {
			case <-h.irq:
			case err := <-h.bad:
				t.Fatalf("the device found the driver broken: %v", err)
			case <-deadline:
				t.Fatalf("round %d: %d of %d requests answered within 10 s", round, len(used), reqs)
			case <-time.After(10 * time.Millisecond):
			}
			used = append(used, h.d.TakeUsed()...)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got := h.d.Read(memAddr(r.data), 8*SectorSize)
			if !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) || (got[0] != 0xaa && got[0] != 0xbb && got[0] != 0) {
				t.Fatalf("round %d: request %d read a mix of files (first byte %#x)", round, r.head, got[0])
			}
		}
	}
}
