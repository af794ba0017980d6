package devices

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// flush waits for a Serial's output to reach its writer.
func flush(t *testing.T, s *Serial) {
	t.Helper()
	if err := s.Flush(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// gatedWriter is a host writer that takes nothing until released, like a
// terminal paused with Ctrl-S. Each Write waits for the gate to open.
type gatedWriter struct {
	mu     sync.Mutex
	cond   *sync.Cond
	open   bool
	writes int // Write calls that returned
	buf    bytes.Buffer
}

func newGatedWriter() *gatedWriter {
	w := &gatedWriter{}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.open {
		w.cond.Wait()
	}
	w.writes++
	return w.buf.Write(p)
}

// release opens the gate until s's output has drained, then closes it.
func (w *gatedWriter) release(t *testing.T, s *Serial) {
	t.Helper()
	w.setOpen(true)
	flush(t, s)
	w.setOpen(false)
}

func (w *gatedWriter) setOpen(open bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open = open
	w.cond.Broadcast()
}

func (w *gatedWriter) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Len()
}

func (w *gatedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// pattern is n bytes that show their order.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestSerialStalledWriterDoesNotBlockVCPU: with the host writer taking
// nothing, the guest's THR writes still return, the buffer fills, LSR
// says so, bytes past the buffer are dropped and counted, and the buffered
// ones arrive, in order, once the writer moves.
func TestSerialStalledWriterDoesNotBlockVCPU(t *testing.T) {
	out := newGatedWriter()
	s := NewSerial(&testIRQ{}, out)
	const extra = 100
	data := pattern(TxBufferSize + extra)
	done := make(chan struct{})
	go func() { // the vCPU
		defer close(done)
		for _, c := range data {
			regWrite(s, SerialTHR, c)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("THR writes blocked behind a stalled writer")
	}
	if got, want := regRead(s, SerialLSR), byte(0); got != want {
		t.Errorf("Read(LSR) with the buffer full = %#02x, want %#02x (THRE and TEMT clear)", got, want)
	}
	if got := s.Stats().Dropped; got != extra {
		t.Errorf("Stats().Dropped = %d, want %d (the bytes past the full buffer)", got, extra)
	}
	out.release(t, s)
	if got := out.String(); got != string(data[:TxBufferSize]) {
		t.Errorf("output = %d bytes, want the first %d sent, in order", len(got), TxBufferSize)
	}
	if got, want := regRead(s, SerialLSR), byte(LSRTHREmpty|LSRTxEmpty); got != want {
		t.Errorf("Read(LSR) after draining = %#02x, want %#02x", got, want)
	}
}

// TestSerialTHREBackpressure walks the transmitter through filling and
// draining with the THRE interrupt on: THRE clears while less than a FIFO
// load fits, the interrupt waits for the writer, and the writer raises it.
func TestSerialTHREBackpressure(t *testing.T) {
	out := newGatedWriter()
	irq := &testIRQ{}
	s := NewSerial(irq, out)
	regWrite(s, SerialIER, IERTHREmpty)
	regRead(s, SerialIIR) // acknowledge the THRE interrupt of enabling it
	fill := func(n int) func() {
		return func() {
			for range n {
				regWrite(s, SerialTHR, 'x')
			}
		}
	}
	lastFit := TxBufferSize - TxFIFOSize // the last fill that leaves THRE set
	steps := []struct {
		name    string
		do      func()
		lsr     byte
		iir     byte // read after lsr; reading acknowledges THRE
		wantIRQ bool // before the IIR read
	}{
		{"one byte: TEMT clears", fill(1), LSRTHREmpty, IIRTHREmpty, true},
		{"up to a FIFO load of room", fill(lastFit - 1), LSRTHREmpty, IIRTHREmpty, true},
		{"one more: THRE clears", fill(1), 0, IIRNone, false},
		{"more into the slack", fill(TxFIFOSize - 1), 0, IIRNone, false},
		{"writer drains: THRE interrupt", func() { out.release(t, s) }, LSRTHREmpty | LSRTxEmpty, IIRTHREmpty, true},
		{"acknowledged", func() {}, LSRTHREmpty | LSRTxEmpty, IIRNone, false},
	}
	for _, st := range steps {
		st.do()
		if got := irq.level(); got != st.wantIRQ {
			t.Errorf("%s: IRQ level = %v, want %v", st.name, got, st.wantIRQ)
		}
		if got := regRead(s, SerialLSR); got != st.lsr {
			t.Errorf("%s: Read(LSR) = %#02x, want %#02x", st.name, got, st.lsr)
		}
		if got := regRead(s, SerialIIR); got != st.iir {
			t.Errorf("%s: Read(IIR) = %#02x, want %#02x", st.name, got, st.iir)
		}
	}
	if got := s.Stats().Dropped; got != 0 {
		t.Errorf("Stats().Dropped = %d, want 0", got)
	}
}

// pieceWriter hands what it is given on in pieces of at most 7 bytes,
// yielding between them, so the writer goroutine and the guest interleave.
type pieceWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *pieceWriter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i += 7 {
		w.mu.Lock()
		w.buf.Write(p[i:min(i+7, len(p))])
		w.mu.Unlock()
		runtime.Gosched()
	}
	return len(p), nil
}

func (w *pieceWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestSerialOrdering sends four times what the buffer holds through a
// driver that waits for THRE before each FIFO load, as Linux's 8250 driver
// does, and checks every byte arrives once, in order, with none dropped.
func TestSerialOrdering(t *testing.T) {
	out := &pieceWriter{}
	s := NewSerial(&testIRQ{}, out)
	data := pattern(4 * TxBufferSize)
	for len(data) > 0 {
		for regRead(s, SerialLSR)&LSRTHREmpty == 0 { // the guest driver's wait
			runtime.Gosched()
		}
		n := min(len(data), TxFIFOSize)
		for _, c := range data[:n] {
			regWrite(s, SerialTHR, c)
		}
		data = data[n:]
	}
	flush(t, s)
	if got, want := out.String(), string(pattern(4*TxBufferSize)); got != want {
		t.Errorf("output differs from what was sent (%d bytes, want %d)", len(got), len(want))
	}
	if got := s.Stats(); got != (SerialStats{}) {
		t.Errorf("Stats() = %+v, want none dropped or failed", got)
	}
}

// slowWriter takes 10 ms for each Write, like a slow terminal, and says
// when each one starts.
type slowWriter struct {
	started chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.started <- struct{}{}
	time.Sleep(40 * time.Millisecond) // the simulated slow host, not a wait
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestSerialFlushWaitsForSlowWriter: Flush keeps waiting, beyond its stall
// time, as long as the writer makes progress, and returns with every byte
// written: what the machine relies on at the end of a run.
func TestSerialFlushWaitsForSlowWriter(t *testing.T) {
	out := &slowWriter{started: make(chan struct{})}
	s := NewSerial(&testIRQ{}, out)
	// Nine writes of 40 ms each outlast the stall time; the stall time is
	// long enough that the test's own goroutine, late to write the next
	// byte on a loaded host, does not look like a stalled writer (30 ms
	// against 10 ms writes once failed so).
	const stall = 250 * time.Millisecond
	regWrite(s, SerialTHR, '0')
	flushed := make(chan error)
	go func() { flushed <- s.Flush(context.Background(), stall) }()
	for c := byte('1'); c <= '9'; c++ {
		<-out.started // one write at a time, 40 ms each: 400 ms > stall
		regWrite(s, SerialTHR, c)
	}
	<-out.started
	if err := <-flushed; err != nil {
		t.Fatalf("Flush(stall %v) with a slow but moving writer = %v, want nil", stall, err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if got, want := out.buf.String(), "0123456789"; got != want {
		t.Errorf("output after Flush = %q, want %q", got, want)
	}
}

// TestSerialFlush: Flush returns once everything is written, and gives up
// with a reason when the writer stalls or the context ends.
func TestSerialFlush(t *testing.T) {
	tests := []struct {
		name    string
		stall   time.Duration
		cancel  bool
		wantErr string
	}{
		{"stalled writer", 20 * time.Millisecond, false, "taken nothing for 20ms"},
		{"context ends", time.Hour, true, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := newGatedWriter()
			s := NewSerial(&testIRQ{}, out)
			for _, c := range []byte("abc") {
				regWrite(s, SerialTHR, c)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			err := s.Flush(ctx, tt.stall)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "3 bytes") {
				t.Errorf("Flush = %v, want an error naming 3 bytes and %q", err, tt.wantErr)
			}
			out.release(t, s)
			if got := out.String(); got != "abc" {
				t.Errorf("output after release = %q, want %q", got, "abc")
			}
		})
	}
}

// recordWriter keeps each Write's bytes apart.
type recordWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *recordWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *recordWriter) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// TestSerialWritesWholeLines: the writer starts at the end of a line, so a
// line written byte by byte reaches out in one Write (one thread wake-up,
// not one per byte); a partial line, a prompt, still reaches out by
// itself, txDelay later.
func TestSerialWritesWholeLines(t *testing.T) {
	out := &recordWriter{}
	s := NewSerial(&testIRQ{}, out)
	start := time.Now()
	for _, c := range []byte("line one") {
		regWrite(s, SerialTHR, c)
	}
	s.mu.Lock()
	running := s.tx.running
	s.mu.Unlock()
	// Only a host too loaded to write 8 bytes within txDelay lets the
	// timer start the writer first.
	quick := time.Since(start) < txDelay
	if quick && running {
		t.Error("the writer started before the line was complete")
	}
	regWrite(s, SerialTHR, '\n')
	flush(t, s)
	if got := out.all(); quick && (len(got) != 1 || got[0] != "line one\n") {
		t.Errorf("writes = %q, want the whole line in one", got)
	}
	regWrite(s, SerialTHR, '$')
	regWrite(s, SerialTHR, ' ')
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if got := strings.Join(out.all(), ""); got == "line one\n$ " {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("output = %q 5 s after a partial line, want %q without a Flush", got, "line one\n$ ")
		}
	}
}
