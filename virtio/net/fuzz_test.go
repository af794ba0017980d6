package net

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/virtio"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// FuzzReceive delivers a frame of the fuzzer's bytes into receive buffers
// of the fuzzer's size, merged or not. Invariants: no panic; merged, the
// used lengths add up to the header and the frame and num_buffers counts
// the chains; not merged, one chain that holds it all or none of it.
func FuzzReceive(f *testing.F) {
	f.Add(make([]byte, 60), uint16(1526), true)
	f.Add(make([]byte, 3000), uint16(100), true)
	f.Add(make([]byte, 1), uint16(12), true)
	f.Add(make([]byte, 1514), uint16(64), false)
	f.Fuzz(func(t *testing.T, frame []byte, bufLen uint16, merge bool) {
		if len(frame) == 0 || len(frame) > 9000 || bufLen < HeaderSize || bufLen > 4096 {
			return
		}
		features := uint64(virtio.FeatureVersion1)
		if merge {
			features |= FeatureMrgRxbuf
		}
		r := newRig(t, false, features)
		var addrs []uint64
		for i := 0; i < 15; i++ {
			h, a := r.rx.Chain(queuetest.Buf{Len: uint32(bufLen), Write: true})
			r.rx.Publish(h)
			addrs = append(addrs, uint64(a[0]))
		}
		need := (HeaderSize + len(frame) + int(bufLen) - 1) / int(bufLen)
		if merge && need > 15 {
			return // would wait for buffers the test never gives
		}
		r.kick(rxQueue)
		r.be.in <- frame
		r.waitIRQ(rxQueue)
		used := r.rx.TakeUsed()
		total := 0
		for _, u := range used {
			total += int(u.Len)
		}
		first := r.rx.Read(memAddr(addrs[used[0].ID]), HeaderSize)
		nb := int(binary.LittleEndian.Uint16(first[numBuffersOff:]))
		switch {
		case merge && (total != HeaderSize+len(frame) || nb != len(used) || len(used) != need):
			t.Fatalf("merged: %d chains, %d bytes, num_buffers %d; want %d chains, %d bytes", len(used), total, nb, need, HeaderSize+len(frame))
		case !merge && len(used) != 1:
			t.Fatalf("not merged: %d chains used, want 1", len(used))
		case !merge && need == 1 && total != HeaderSize+len(frame):
			t.Fatalf("not merged: %d bytes for a frame that fits, want %d", total, HeaderSize+len(frame))
		case !merge && need > 1 && total != 0:
			t.Fatalf("not merged: %d bytes for a frame that does not fit, want 0 (dropped)", total)
		}
	})
}
