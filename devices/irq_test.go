package devices

import (
	"errors"
	"sync"
)

// testIRQ records the level a device drives and how often it was set.
type testIRQ struct {
	mu    sync.Mutex
	high  bool
	calls int
	err   error // returned by SetLevel when set
}

func (l *testIRQ) SetLevel(high bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.high = high
	l.calls++
	return l.err
}

func (l *testIRQ) level() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.high
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("sink is gone") }

// regWrite and regRead are one-byte accesses for tests.
func regWrite(d Device, off uint64, v byte) { d.Write(off, []byte{v}) }

func regRead(d Device, off uint64) byte {
	p := []byte{0}
	d.Read(off, p)
	return p[0]
}
