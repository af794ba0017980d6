package devices

// The POST code port: firmware writes progress codes to port 0x80 (and
// Linux writes to it as a short I/O delay). One register at offset 0:
//
//	off  read  write
//	0    0     POST code: counted, the last one kept
//
// Wider writes keep their low byte.

import "sync/atomic"

// POST is the port-0x80 sink. It is safe for concurrent use.
type POST struct {
	writes atomic.Uint64
	last   atomic.Uint32
}

// POSTState is the state of a POST device.
type POSTState struct {
	Writes uint64 // writes seen
	Last   byte   // the last code written
}

// NewPOST returns a POST sink that has seen no writes.
func NewPOST() *POST { return &POST{} }

// RestorePOST rebuilds a POST sink from st.
func RestorePOST(st POSTState) *POST {
	p := &POST{}
	p.Restore(st)
	return p
}

// Restore puts the sink in state st.
func (d *POST) Restore(st POSTState) {
	d.writes.Store(st.Writes)
	d.last.Store(uint32(st.Last))
}

// State returns the counters.
func (d *POST) State() POSTState {
	return POSTState{Writes: d.writes.Load(), Last: byte(d.last.Load())}
}

// Read fills p with zeros.
func (d *POST) Read(off uint64, p []byte) { clear(p) }

// Write records the low byte of p.
func (d *POST) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	d.last.Store(uint32(p[0]))
	d.writes.Add(1)
}
