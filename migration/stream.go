// Package migration moves a running govmm guest to another govmm process
// over a network connection: pre-copy live migration. The source sends
// all RAM while the guest runs, then the pages it wrote meanwhile, round
// after round, until what is left would take less than the downtime
// target to send (or a bound on rounds or time is reached); then it
// pauses the guest, sends the rest and the machine's state, and hands
// over. The destination confirms that it runs the guest before the
// source lets go; a connection cut before that leaves the source running.
package migration

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/govmm/govmm/memory"
)

// The stream, little-endian. The source begins with a header:
//
//	offset  size  field
//	0       8     magic "GOVMMMIG"
//	8       4     stream version (StreamVersion)
//	12      4     flags, zero
//	16      2     n: length of the govmm version that sends (at most 256)
//	18      n     that version
//
// then records, each a section with its own checksum:
//
//	0       1     type (Rec*)
//	1       3     zero
//	4       4     m: payload length (at most MaxPayload)
//	8       m     payload
//	8+m     4     CRC-32C (Castagnoli) of the 8 header bytes and the payload
//
// The source sends RecConfig, RecPages and RecRoundEnd records, then
// RecState and RecEnd; the destination answers RecReady, the source
// RecGo, the destination RecRunning. Either side may send RecAbort with a
// message instead of what it owes.
const (
	Magic         = "GOVMMMIG"
	StreamVersion = 1
	MaxVersionLen = 256
	// PagesPerRecord is the most pages one RecPages record carries.
	PagesPerRecord = 256
	// MaxPayload bounds a record: a state of 255 vCPUs is about 6 MiB.
	MaxPayload = 64 << 20
	recHeader  = 8
	recSum     = 4
	pageSize   = memory.PageSize
)

// RecordType says what a record holds.
type RecordType uint8

// The record types.
const (
	RecConfig   RecordType = 1  // source: machine.SavedConfig as JSON
	RecPages    RecordType = 2  // source: a run of pages (PagesHeader, then data)
	RecRoundEnd RecordType = 3  // source: a round's end (RoundEnd)
	RecState    RecordType = 4  // source: machine.State as JSON
	RecEnd      RecordType = 5  // source: everything is sent
	RecGo       RecordType = 6  // source: run it; the source will not
	RecReady    RecordType = 16 // destination: the machine is built, paused
	RecRunning  RecordType = 17 // destination: the guest runs here
	RecAbort    RecordType = 32 // either: giving up, the payload says why
)

func (t RecordType) String() string {
	switch t {
	case RecConfig:
		return "config"
	case RecPages:
		return "pages"
	case RecRoundEnd:
		return "round end"
	case RecState:
		return "state"
	case RecEnd:
		return "end"
	case RecGo:
		return "go"
	case RecReady:
		return "ready"
	case RecRunning:
		return "running"
	case RecAbort:
		return "abort"
	}
	return fmt.Sprintf("record type %d", uint8(t))
}

// PagesHeader starts a RecPages payload: First is the first page's
// number (memory's numbering), N how many; with Zero set the pages are
// all zeros and no data follows, else N*4096 bytes do.
type PagesHeader struct {
	First uint64
	N     uint32
	Zero  bool
}

const pagesHeaderLen = 16 // first u64, n u32, zero u8, 3 zero bytes

// RoundEnd is a RecRoundEnd payload: the round that ended and how many
// pages it sent.
type RoundEnd struct {
	Round uint32
	Pages uint64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrStream is wrapped by every error about a malformed stream.
var ErrStream = errors.New("malformed migration stream")

func streamErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrStream}, args...)...)
}

// writeHeader writes the stream header.
func writeHeader(w io.Writer, version string) error {
	if len(version) > MaxVersionLen {
		version = version[:MaxVersionLen]
	}
	b := make([]byte, 0, 18+len(version))
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, StreamVersion)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(version)))
	b = append(b, version...)
	_, err := w.Write(b)
	return err
}

// readHeader reads the stream header and returns the sender's version.
func readHeader(r io.Reader) (string, error) {
	var h [18]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("reading the stream header: %w", err)
	}
	if string(h[:8]) != Magic {
		return "", streamErr("it does not begin with %q: the peer is not a govmm migration source", Magic)
	}
	v := binary.LittleEndian.Uint32(h[8:])
	if v != StreamVersion {
		return "", streamErr("stream version %d; this govmm speaks version %d: migrate between govmm builds of the same stream version", v, StreamVersion)
	}
	if f := binary.LittleEndian.Uint32(h[12:]); f != 0 {
		return "", streamErr("header flags %#x, which version %d does not have", f, StreamVersion)
	}
	n := int(binary.LittleEndian.Uint16(h[16:]))
	if n > MaxVersionLen {
		return "", streamErr("the sender's version is %d bytes long, more than %d", n, MaxVersionLen)
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return "", fmt.Errorf("reading the stream header: %w", err)
	}
	return string(name), nil
}

// recordWriter writes records, reusing its buffer.
type recordWriter struct {
	w   io.Writer
	buf []byte
}

// write writes one record of type t whose payload is the concatenation
// of parts.
func (rw *recordWriter) write(t RecordType, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxPayload {
		return fmt.Errorf("a %v record of %d bytes is more than the %d a record may hold", t, n, MaxPayload)
	}
	b := rw.buf[:0]
	b = append(b, byte(t), 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, p := range parts {
		b = append(b, p...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	rw.buf = b
	_, err := rw.w.Write(b)
	return err
}

// pages writes a RecPages record of data (nil for zero pages).
func (rw *recordWriter) pages(first uint64, n int, data []byte) error {
	h := make([]byte, pagesHeaderLen)
	binary.LittleEndian.PutUint64(h, first)
	binary.LittleEndian.PutUint32(h[8:], uint32(n))
	if data == nil {
		h[12] = 1
	}
	return rw.write(RecPages, h, data)
}

// Record is one record read from a stream. Payload is valid until the
// next read.
type Record struct {
	Type    RecordType
	Payload []byte
}

// recordReader reads records, reusing its buffer.
type recordReader struct {
	r   *bufio.Reader
	buf []byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 1<<20)}
}

// read reads the next record and checks its checksum.
func (rr *recordReader) read() (Record, error) {
	var h [recHeader]byte
	if _, err := io.ReadFull(rr.r, h[:]); err != nil {
		return Record{}, err
	}
	t := RecordType(h[0])
	if h[1]|h[2]|h[3] != 0 {
		return Record{}, streamErr("a %v record's reserved bytes are %#x", t, h[1:4])
	}
	n := binary.LittleEndian.Uint32(h[4:])
	if n > MaxPayload {
		return Record{}, streamErr("a %v record claims %d bytes, more than %d", t, n, MaxPayload)
	}
	need := int(n) + recSum
	if cap(rr.buf) < need {
		rr.buf = make([]byte, need)
	}
	body := rr.buf[:need]
	if _, err := io.ReadFull(rr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Record{}, fmt.Errorf("reading a %v record of %d bytes: %w", t, n, err)
	}
	sum := crc32.Update(crc32.Checksum(h[:], castagnoli), castagnoli, body[:n])
	if got := binary.LittleEndian.Uint32(body[n:]); got != sum {
		return Record{}, streamErr("a %v record of %d bytes fails its checksum (%08x, computed %08x): damaged in transit", t, n, got, sum)
	}
	return Record{Type: t, Payload: body[:n]}, nil
}

// parsePages checks a RecPages payload against RAM's pages and returns
// its header and data.
func parsePages(p []byte, pages uint64) (PagesHeader, []byte, error) {
	if len(p) < pagesHeaderLen {
		return PagesHeader{}, nil, streamErr("a pages record of %d bytes, shorter than its %d-byte header", len(p), pagesHeaderLen)
	}
	h := PagesHeader{First: binary.LittleEndian.Uint64(p), N: binary.LittleEndian.Uint32(p[8:])}
	switch p[12] {
	case 0:
	case 1:
		h.Zero = true
	default:
		return h, nil, streamErr("a pages record's zero flag is %d", p[12])
	}
	if p[13]|p[14]|p[15] != 0 {
		return h, nil, streamErr("a pages record's reserved bytes are %#x", p[13:16])
	}
	if h.N == 0 || h.N > PagesPerRecord {
		return h, nil, streamErr("a pages record of %d pages; 1 to %d may be sent at once", h.N, PagesPerRecord)
	}
	if h.First >= pages || uint64(h.N) > pages-h.First {
		return h, nil, streamErr("pages %d to %d are past the end of RAM's %d", h.First, h.First+uint64(h.N)-1, pages)
	}
	data := p[pagesHeaderLen:]
	want := 0
	if !h.Zero {
		want = int(h.N) * pageSize
	}
	if len(data) != want {
		return h, nil, streamErr("a pages record of %d pages carries %d bytes of data, want %d", h.N, len(data), want)
	}
	return h, data, nil
}

// parseRoundEnd reads a RecRoundEnd payload.
func parseRoundEnd(p []byte) (RoundEnd, error) {
	if len(p) != 12 {
		return RoundEnd{}, streamErr("a round-end record of %d bytes, want 12", len(p))
	}
	return RoundEnd{Round: binary.LittleEndian.Uint32(p), Pages: binary.LittleEndian.Uint64(p[4:])}, nil
}

func roundEndPayload(e RoundEnd) []byte {
	b := binary.LittleEndian.AppendUint32(nil, e.Round)
	return binary.LittleEndian.AppendUint64(b, e.Pages)
}
