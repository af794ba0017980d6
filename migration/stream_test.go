package migration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// streamConn is a net.Conn that reads a fixed stream and keeps what is
// written to it.
type streamConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *streamConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *streamConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

const testRAM = 1 << 20 // 256 pages

// sampleStream is a whole migration of a 1 MiB guest: two pages of data,
// a zero page, a round end, the state and the end.
func sampleStream(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeHeader(&b, "govmm test"); err != nil {
		t.Fatal(err)
	}
	rw := &recordWriter{w: &b}
	cfg := machine.SavedConfig{MemSize: testRAM, CPUs: 1}
	st := &machine.State{Config: cfg, VCPUs: []vcpu.State{{}}}
	cj, _ := json.Marshal(cfg)
	sj, _ := json.Marshal(st)
	data := bytes.Repeat([]byte{0xab}, 2*pageSize)
	for _, err := range []error{
		rw.write(RecConfig, cj),
		rw.pages(3, 2, data),
		rw.pages(200, 1, nil),
		rw.write(RecRoundEnd, roundEndPayload(RoundEnd{Round: 0, Pages: 3})),
		rw.write(RecState, sj),
		rw.write(RecEnd),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// receive runs Receive on stream with a check that takes small guests.
func receive(stream []byte) (*Incoming, *streamConn, error) {
	c := &streamConn{r: bytes.NewReader(stream)}
	in, err := Receive(c, func(s machine.SavedConfig) error {
		if s.MemSize > 16<<20 {
			return fmt.Errorf("this test takes guests of 16 MiB at most")
		}
		return nil
	}, nil)
	return in, c, err
}

func TestReceiveStream(t *testing.T) {
	in, _, err := receive(sampleStream(t))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Restore.Memory.Close()
	if in.Source != "govmm test" || in.Rounds != 1 || in.Pages != 3 {
		t.Errorf("Receive() = source %q, %d rounds, %d pages; want govmm test, 1, 3", in.Source, in.Rounds, in.Pages)
	}
	var b [1]byte
	for _, tt := range []struct {
		addr uint64
		want byte
	}{{3 * pageSize, 0xab}, {5*pageSize - 1, 0xab}, {5 * pageSize, 0}, {2*pageSize - 1, 0}} {
		if err := in.Restore.Memory.ReadAt(b[:], 0+memoryAddr(tt.addr)); err != nil || b[0] != tt.want {
			t.Errorf("RAM at %#x = %#x, %v; want %#x", tt.addr, b[0], err, tt.want)
		}
	}
}

// TestReceiveRefuses checks what Receive says of broken streams, and that
// it tells the source (a RecAbort) when it can.
func TestReceiveRefuses(t *testing.T) {
	good := sampleStream(t)
	hdr := 18 + len("govmm test")
	// The first record (config) starts at hdr; its payload length at hdr+4.
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 1
		return b
	}
	record := func(typ RecordType, payload []byte) []byte {
		var b bytes.Buffer
		b.Write(good[:hdr])
		cfgLen := int(binary.LittleEndian.Uint32(good[hdr+4:]))
		b.Write(good[hdr : hdr+recHeader+cfgLen+recSum]) // the config record
		rw := &recordWriter{w: &b}
		rw.write(typ, payload)
		return b.Bytes()
	}
	pagesPayload := func(first uint64, n uint32, zero byte, data int) []byte {
		p := binary.LittleEndian.AppendUint64(nil, first)
		p = binary.LittleEndian.AppendUint32(p, n)
		p = append(p, zero, 0, 0, 0)
		return append(p, make([]byte, data)...)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "reading the stream header"},
		{"not a stream", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "not a govmm migration source"},
		{"another version", func() []byte { b := bytes.Clone(good); b[8] = 9; return b }(), "stream version 9"},
		{"a damaged record", flip(hdr + recHeader + 3), "fails its checksum"},
		{"a record's reserved bytes", flip(hdr + 1), "reserved bytes"},
		{"cut during the config", good[:hdr+5], "during the configuration"},
		{"cut during the pages", good[:hdr+200], "the source closed the connection during the first round of pages"},
		{"cut during the state", good[:len(good)-5000], "the source closed the connection during the pages and state after round 0"},
		{"cut before the end", good[:len(good)-12], "the source closed the connection"},
		{"a guest too big for the check", func() []byte {
			var b bytes.Buffer
			writeHeader(&b, "x")
			cj, _ := json.Marshal(machine.SavedConfig{MemSize: 1 << 30, CPUs: 1})
			(&recordWriter{w: &b}).write(RecConfig, cj)
			return b.Bytes()
		}(), "at most"},
		{"pages past RAM", record(RecPages, pagesPayload(250, 10, 1, 0)), "past the end of RAM"},
		{"too many pages at once", record(RecPages, pagesPayload(0, 257, 1, 0)), "1 to 256 may be sent"},
		{"pages without their data", record(RecPages, pagesPayload(0, 2, 0, pageSize)), "carries 4096 bytes of data, want 8192"},
		{"zero pages with data", record(RecPages, pagesPayload(0, 1, 1, 1)), "carries 1 bytes of data, want 0"},
		{"a bad zero flag", record(RecPages, pagesPayload(0, 1, 2, 0)), "zero flag is 2"},
		{"a short round end", record(RecRoundEnd, []byte{1}), "round-end record of 1 bytes"},
		{"a state that is not JSON", record(RecState, []byte("{")), "state does not decode"},
		{"the end without a state", record(RecEnd, nil), "ended without the machine's state"},
		{"a record out of place", record(RecRunning, nil), "unexpected running record"},
		{"the source gives up", record(RecAbort, []byte("disk on fire")), "the source gave up: disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, c, err := receive(tt.data)
			if err == nil {
				in.Restore.Memory.Close()
				t.Fatalf("Receive() = nil error, want one saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Receive() = %v, want it to say %q", err, tt.want)
			}
			if c.out.Len() > 0 {
				rec, rerr := newRecordReader(&c.out).read()
				if rerr != nil || rec.Type != RecAbort || !strings.Contains(string(rec.Payload), tt.want) {
					t.Errorf("Receive() answered %v %q (%v), want an abort saying why", rec.Type, rec.Payload, rerr)
				}
			}
		})
	}
}

func TestRecordTooLong(t *testing.T) {
	var b bytes.Buffer
	b.Write([]byte{byte(RecState), 0, 0, 0})
	b.Write(binary.LittleEndian.AppendUint32(nil, MaxPayload+1))
	_, err := newRecordReader(&b).read()
	if !errors.Is(err, ErrStream) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("read() of a record claiming %d bytes = %v, want ErrStream saying it is too long", MaxPayload+1, err)
	}
	if err := (&recordWriter{w: io.Discard}).write(RecState, make([]byte, MaxPayload+1)); err == nil {
		t.Errorf("write() of a record of %d bytes = nil error", MaxPayload+1)
	}
}

func TestRunsByZero(t *testing.T) {
	page := func(v byte) []byte { return bytes.Repeat([]byte{v}, pageSize) }
	tests := []struct {
		pages [][]byte
		want  string
	}{
		{[][]byte{page(0)}, "0+1z"},
		{[][]byte{page(1), page(1), page(0), page(2)}, "0+2d 2+1z 3+1d"},
		{[][]byte{page(0), page(0), page(3)}, "0+2z 2+1d"},
	}
	for _, tt := range tests {
		var got []string
		runsByZero(bytes.Join(tt.pages, nil), func(off, n int, zero bool) error {
			k := "d"
			if zero {
				k = "z"
			}
			got = append(got, fmt.Sprintf("%d+%d%s", off/pageSize, n/pageSize, k))
			return nil
		})
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("runsByZero() = %s, want %s", s, tt.want)
		}
	}
}

// FuzzReceive feeds Receive arbitrary streams: it must never panic nor
// accept pages outside RAM, and must free what it took when it fails.
// testdata/fuzz/FuzzReceive holds a whole stream and cut and damaged
// ones.
func FuzzReceive(f *testing.F) {
	good := sampleStream(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		in, _, err := receive(data)
		if err != nil {
			return
		}
		if in.Restore == nil || in.Restore.State == nil || in.Restore.Memory == nil {
			t.Fatalf("Receive() = %+v with no error but no state or RAM", in)
		}
		in.Restore.Memory.Close()
	})
}

func memoryAddr(a uint64) memory.GuestAddr { return memory.GuestAddr(a) }
