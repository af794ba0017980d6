package blk

import (
	"testing"

	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

func memAddr(a uint64) memory.GuestAddr { return memory.GuestAddr(a) }

// FuzzRequest sends the fuzzer's bytes as a request (header and data,
// split in two buffers) with writable room of its choosing. Invariants:
// no panic, the status is OK, IOERR or UNSUPP, and the used length
// covers at most the writable room.
func FuzzRequest(f *testing.F) {
	f.Add(header(TypeOut, 1), make([]byte, 512), uint16(1))
	f.Add(header(TypeIn, 0), []byte{}, uint16(513))
	f.Add(header(TypeDiscard, 0), segment(0, 8, 0), uint16(1))
	f.Add(header(TypeWriteZeroes, 120), segment(120, 8, 1), uint16(1))
	f.Add(header(TypeGetID, 0), []byte{}, uint16(21))
	f.Add([]byte{0xff}, []byte{}, uint16(0))
	h := newHarness(f, 64<<10, Options{})
	f.Fuzz(func(t *testing.T, hdr, data []byte, room uint16) {
		h.t = t
		bufs := []queuetest.Buf{{Data: hdr}}
		if len(data) > 0 {
			bufs = append(bufs, queuetest.Buf{Data: data})
		}
		if room > 0 {
			bufs = append(bufs, queuetest.Buf{Len: uint32(room), Write: true})
		}
		h.d.ResetData()
		n, addrs := h.do(bufs...)
		if n > uint32(room) {
			t.Fatalf("used length %d, more than the %d writable bytes", n, room)
		}
		if room > 0 {
			st := h.d.Read(memAddr(addrs[len(addrs)-1]+uint64(room)-1), 1)[0]
			if st > StatusUnsupp {
				t.Fatalf("status %d", st)
			}
		}
	})
}
