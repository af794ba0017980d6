package queue_test

import (
	"errors"
	"testing"

	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/virtio/queue"
	"github.com/govmm/govmm/virtio/queue/queuetest"
)

// FuzzPop gives the device a descriptor table, available ring and data
// area of the fuzzer's bytes (a queue of 8 at ringBase: input bytes 0-127
// are the table, 128-149 the available ring, the rest the data area at
// dataBase, where indirect tables may lie). The device pops until the
// ring is empty or the driver broke a rule, writes every writable byte it
// was given and returns each chain. Invariants: it never panics or
// touches memory outside RAM (RAM is a Go slice: a stray access panics),
// always stops (a loop would hang the fuzzer), every error wraps
// ErrDriver, a chain has at most 8 + 2048 buffers, and the used index
// counts the chains returned.
func FuzzPop(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, features uint8) {
		mem := queuetest.NewMemory(ramSize)
		cfg := queuetest.Layout(8, ringBase, 0)
		cfg.Indirect, cfg.EventIdx = features&1 != 0, features&2 != 0
		region, err := mem.Slice(0, ramSize)
		if err != nil {
			t.Fatal(err)
		}
		n := copy(region[cfg.Desc:cfg.Desc+128], data)
		if len(data) > n {
			n += copy(region[cfg.Avail:cfg.Avail+memory.GuestAddr(queue.AvailBytes(8))], data[n:])
		}
		if len(data) > n {
			copy(region[dataBase:], data[n:])
		}
		q, err := queue.New(mem, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var c queue.Chain
		popped := 0
		for i := 0; i < 8; i++ {
			ok, err := q.Pop(&c)
			if err != nil {
				if !errors.Is(err, queue.ErrDriver) {
					t.Fatalf("Pop() error %v does not wrap ErrDriver", err)
				}
				break
			}
			if !ok {
				break
			}
			if len(c.Readable)+len(c.Writable) > 8+ramSize/queue.DescSize {
				t.Fatalf("chain of %d buffers from a queue of 8", len(c.Readable)+len(c.Writable))
			}
			for _, b := range c.Writable {
				for j := range b {
					b[j] = 0xA5
				}
			}
			if err := q.Push(c.Head, uint32(c.WritableLen())); err != nil {
				t.Fatal(err)
			}
			popped++
		}
		if _, used := q.Indices(); int(used) != popped {
			t.Fatalf("used index %d after %d chains", used, popped)
		}
		if _, err := q.NeedInterrupt(); err != nil {
			t.Fatal(err)
		}
	})
}
