package devices

// The transmit side of the UART: the guest's output, written to the host
// off the vCPU thread.
//
// A THR write puts the byte in a bounded buffer of TxBufferSize bytes and
// returns. A writer goroutine, started when a line is complete (or
// TxFlushAt bytes wait, or txDelay after the first byte of a partial line)
// and ending when the buffer is empty again, hands out everything that has
// piled up in one Write. A stalled out (a terminal paused with Ctrl-S, a
// pipe nobody reads) therefore never stalls a vCPU, and a burst of console
// output costs one write and one thread wake-up, not one per byte (a
// wake-up per byte cost about 5 us of every THR exit on a PVM host).
//
// When out is slower than the guest, the UART pushes back through the
// bits a driver already watches, so nothing is lost:
//
//   - LSR.THRE ("THR can take a byte") is set only while the buffer has
//     room for a whole transmit FIFO load (TxFIFOSize bytes), because
//     Linux's 8250 driver writes up to that many bytes per THRE interrupt
//     without reading LSR in between;
//   - LSR.TEMT ("all sent") is set only when the buffer is empty and the
//     last Write to out has returned, so a guest's tcdrain() means its
//     bytes reached out;
//   - the THRE interrupt, which fires again right after a THR write while
//     there is room, fires from the writer goroutine when the buffer
//     drains back to the mark.
//
// A driver that waits for THRE before writing (Linux's console and its
// interrupt-driven tty, the test guests) then waits for the host instead
// of losing bytes. Blocking the vCPU on a full buffer would stall the
// guest, which is what this design exists to avoid, and dropping bytes
// silently would lose output that govmm exec passes on byte for byte; so
// only a byte written while the buffer is completely full, by a driver
// that ignored THRE for longer than TxBufferSize-TxFIFOSize bytes of
// slack, is dropped, and counted in SerialStats.Dropped. (Linux's console
// gives up waiting for THRE after about 10 ms and writes anyway: it loses
// bytes only once out has stalled for that long per byte with the buffer
// already full.)
//
// FCR's "clear transmit FIFO" bit is ignored: buffered bytes are already
// on the wire, and dropping them would lose output whenever Linux
// reprograms the port.

import (
	"context"
	"fmt"
	"time"
)

const (
	// TxBufferSize is how much guest output a Serial holds while out is
	// busy.
	TxBufferSize = 64 << 10
	// TxFIFOSize is the 16550A's transmit FIFO: the room LSR.THRE promises.
	TxFIFOSize = 16
	// TxFlushAt is how many queued bytes start the writer without a
	// newline.
	TxFlushAt = 4 << 10
	// txDelay is how long the start of a partial line (a shell prompt, an
	// echoed key) waits for more before the writer starts: short enough
	// that nobody at a terminal sees it.
	txDelay = time.Millisecond
)

// txQueue is the output waiting for the writer goroutine: a ring buffer.
// Bytes stay counted in n until out has taken them, so the writer can
// write straight from buf while the vCPU fills the free part.
type txQueue struct {
	buf     []byte // TxBufferSize bytes, allocated at the first byte
	head    int    // the oldest byte not yet written out
	n       int    // bytes queued, those being written included
	running bool   // a writer goroutine is running
	// timer starts the writer txDelay after a partial line began;
	// timerSet says it is armed.
	timer    *time.Timer
	timerSet bool
	// idle is closed when the writer goroutine ends with the buffer empty.
	idle     chan struct{}
	progress chan struct{} // receives a value after each Write to out
}

// thrEmpty says whether THR can take a FIFO load: the LSR.THRE bit.
func (s *Serial) thrEmpty() bool { return TxBufferSize-s.tx.n >= TxFIFOSize }

// txEmpty says whether everything sent has reached out: the LSR.TEMT bit.
func (s *Serial) txEmpty() bool { return s.tx.n == 0 }

// queueTx queues one transmitted byte, and starts the writer at the end of
// a line or arms its timer. Called with mu held.
func (s *Serial) queueTx(v byte) {
	q := &s.tx
	if q.n == TxBufferSize {
		s.dropped.Add(1)
		return
	}
	if q.buf == nil {
		q.buf = make([]byte, TxBufferSize)
	}
	q.buf[(q.head+q.n)%TxBufferSize] = v
	q.n++
	switch {
	case q.running:
		// The writer takes it on its next turn.
	case v == '\n' || q.n >= TxFlushAt:
		s.startWriter()
	case !q.timerSet:
		q.timerSet = true
		if q.timer == nil {
			q.timer = time.AfterFunc(txDelay, s.timerFired)
		} else {
			q.timer.Reset(txDelay)
		}
	}
}

// startWriter starts the writer goroutine if it is not running and bytes
// wait. Called with mu held.
func (s *Serial) startWriter() {
	q := &s.tx
	if q.timerSet {
		q.timer.Stop()
		q.timerSet = false
	}
	if q.running || q.n == 0 {
		return
	}
	q.running = true
	q.idle = make(chan struct{})
	go s.writeOut()
}

// timerFired starts the writer for a partial line that waited txDelay.
func (s *Serial) timerFired() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tx.timerSet = false
	s.startWriter()
}

// writeOut is the writer goroutine: it writes the buffered bytes to out,
// oldest first, without holding mu while out.Write runs, and ends when the
// buffer is empty.
func (s *Serial) writeOut() {
	q := &s.tx
	for {
		s.mu.Lock()
		if q.n == 0 {
			q.running = false
			close(q.idle)
			s.mu.Unlock()
			return
		}
		// The bytes up to the end of the ring; the rest on the next turn.
		chunk := q.buf[q.head : q.head+min(q.n, TxBufferSize-q.head)]
		s.mu.Unlock()

		n, err := s.out.Write(chunk)

		s.mu.Lock()
		if err != nil {
			// The writer failed: those bytes cannot be sent again in order
			// with what follows, so they are counted and dropped.
			s.outErrors.Add(1)
			s.dropped.Add(uint64(len(chunk) - min(max(n, 0), len(chunk))))
		}
		wasFull := !s.thrEmpty()
		q.head = (q.head + len(chunk)) % TxBufferSize
		q.n -= len(chunk)
		if wasFull && s.thrEmpty() {
			s.r.thrPending = true // THR empty again: the THRE interrupt
		}
		s.mu.Unlock()
		s.syncIRQ()
		select {
		case q.progress <- struct{}{}:
		default:
		}
	}
}

// Flush waits until every byte the guest has sent has been written to out.
// It gives up with an error when ctx ends, or when out has taken nothing
// for stall: a reader that stopped reading would otherwise hold the VMM
// forever.
func (s *Serial) Flush(ctx context.Context, stall time.Duration) error {
	for {
		s.mu.Lock()
		s.startWriter() // a partial line waiting for its timer goes now
		idle, left := s.tx.idle, s.tx.n
		running := s.tx.running
		s.mu.Unlock()
		if !running {
			return nil
		}
		t := time.NewTimer(stall)
		select {
		case <-idle:
			t.Stop()
			return nil
		case <-s.tx.progress:
			t.Stop()
		case <-t.C:
			return fmt.Errorf("%d bytes of serial output not written: its reader has taken nothing for %v (is the terminal paused, or the pipe's reader stopped?)", left, stall)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d bytes of serial output not written: %w", left, context.Cause(ctx))
		}
	}
}
