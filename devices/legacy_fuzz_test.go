package devices

import (
	"testing"
	"time"
)

// accesses turns fuzz bytes into register accesses: each triple is
// (offset, value, write?). The guest chooses all of them.
func accesses(ops []byte, do func(off uint64, v byte, write bool)) {
	for i := 0; i+2 < len(ops); i += 3 {
		do(uint64(ops[i]), ops[i+1], ops[i+2]&1 == 1)
	}
}

// FuzzI8042 drives the controller with any accesses: it must not panic,
// and its state must survive a round trip.
func FuzzI8042(f *testing.F) {
	f.Add([]byte{4, 0xaa, 1, 0, 0, 0, 4, 0x60, 1, 0, 0x45, 1, 4, 0xd1, 1, 0, 0xfe, 1})
	f.Add([]byte{4, 0xfe, 1, 4, 0x20, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		k := NewI8042(func() {})
		accesses(ops, func(off uint64, v byte, write bool) {
			p := []byte{v}
			if write {
				k.Write(off, p)
			} else {
				k.Read(off, p)
			}
		})
		if got := RestoreI8042(k.State(), func() {}).State(); got != k.State() {
			t.Errorf("i8042 state after restore = %+v, want %+v", got, k.State())
		}
	})
}

// FuzzRTC drives the CMOS RTC with any index and data accesses, including
// nonsense times written while SET is on.
func FuzzRTC(f *testing.F) {
	f.Add([]byte{0, 0x0b, 1, 1, 0x86, 1, 0, 0x00, 1, 1, 0x99, 1, 0, 0x0b, 1, 1, 0x06, 1})
	f.Add([]byte{0, 0x8a, 1, 1, 0, 0, 0, 0x32, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clock := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
		r := NewRTC(func() time.Time { return clock })
		accesses(ops, func(off uint64, v byte, write bool) {
			p := []byte{v}
			if write {
				r.Write(off%2, p)
			} else {
				r.Read(off%2, p)
			}
		})
	})
}
