package devices

// A 16550A UART, as Linux's 8250 driver and every PC BIOS know it.
//
// Register map (offset from the base port, COM1 is at 0x3f8). DLAB is bit 7
// of LCR; it swaps offsets 0 and 1 to the baud-rate divisor latch.
//
//	off  DLAB  read                        write
//	0    0     RBR receive buffer          THR transmit holding
//	0    1     DLL divisor latch, low      DLL
//	1    0     IER interrupt enable        IER
//	1    1     DLM divisor latch, high     DLM
//	2    -     IIR interrupt identification FCR FIFO control
//	3    -     LCR line control            LCR
//	4    -     MCR modem control           MCR
//	5    -     LSR line status             (ignored)
//	6    -     MSR modem status            (ignored)
//	7    -     SCR scratch                 SCR
//
// Interrupt sources, highest priority first (the IIR names the highest one
// pending): receiver line status (LSR error bits, enabled by IER.ELSI),
// received data available (IER.ERBFI), transmitter holding register empty
// (IER.ETBEI), modem status change (IER.EDSSI).
//
// Transmission does not wait for the host: a THR write queues the byte for
// a writer goroutine (serial_tx.go), so THR is empty again at once and the
// THRE interrupt fires again after every write while IER.ETBEI is on, as
// long as the queue has room. Linux's 8250 driver sends its console output
// from that interrupt. When the host falls behind, LSR.THRE and LSR.TEMT
// clear until it catches up: backpressure through the bits a driver
// watches, rather than a stalled vCPU or lost bytes.
//
// Reception never overruns: host input waits in a queue of up to
// RxQueueSize bytes, and Enqueue says how much it took. The first
// RxFIFOSize bytes of it are the FIFO the guest sees (clearing the receive
// FIFO through FCR drops only those); the guest cannot tell the rest apart
// from bytes still on the wire. A received-data interrupt is pending whenever
// any byte is waiting: the FCR trigger level is stored but not used.
//
// The interrupt output is not gated by MCR.OUT2 (as it is on a PC board):
// the line is high whenever the IIR shows an interrupt. The line is driven
// after the registers' lock is released, under a lock of its own, so no
// interrupt-controller call happens while a vCPU holds the device.

import (
	"io"
	"sync"
	"sync/atomic"
)

// Register offsets.
const (
	SerialRBR = 0 // receive buffer (read, DLAB=0)
	SerialTHR = 0 // transmit holding (write, DLAB=0)
	SerialDLL = 0 // divisor latch low (DLAB=1)
	SerialIER = 1 // interrupt enable (DLAB=0)
	SerialDLM = 1 // divisor latch high (DLAB=1)
	SerialIIR = 2 // interrupt identification (read)
	SerialFCR = 2 // FIFO control (write)
	SerialLCR = 3 // line control
	SerialMCR = 4 // modem control
	SerialLSR = 5 // line status
	SerialMSR = 6 // modem status
	SerialSCR = 7 // scratch
)

// IER bits.
const (
	IERRxData     = 1 << 0 // ERBFI: received data available
	IERTHREmpty   = 1 << 1 // ETBEI: transmitter holding register empty
	IERLineStatus = 1 << 2 // ELSI: receiver line status
	IERModem      = 1 << 3 // EDSSI: modem status
	ierMask       = 0x0f
)

// IIR values: bit 0 is set when no interrupt is pending; bits 3:1 name the
// source; bits 7:6 are set when the FIFOs are enabled.
const (
	IIRNone       = 0x01
	IIRModem      = 0x00
	IIRTHREmpty   = 0x02
	IIRRxData     = 0x04
	IIRLineStatus = 0x06
	IIRFIFOs      = 0xc0
)

// FCR bits.
const (
	FCREnable  = 1 << 0 // enable both FIFOs
	FCRClearRx = 1 << 1 // clear the receive FIFO (self-clearing)
	FCRClearTx = 1 << 2 // clear the transmit FIFO (self-clearing)
	FCRDMA     = 1 << 3 // DMA mode select
	FCRTrigger = 0xc0   // receive trigger level: 1, 4, 8 or 14 bytes
)

// LCR bits.
const (
	LCRWordLen = 0x03   // 5 + n data bits
	LCRStop    = 1 << 2 // 2 stop bits (1.5 for 5-bit words)
	LCRParity  = 1 << 3 // parity enable
	LCREven    = 1 << 4 // even parity
	LCRStick   = 1 << 5 // stick parity
	LCRBreak   = 1 << 6 // send break
	LCRDLAB    = 1 << 7 // divisor latch access
	LCR8N1     = 0x03   // 8 data bits, no parity, 1 stop bit
)

// MCR bits.
const (
	MCRDTR  = 1 << 0
	MCRRTS  = 1 << 1
	MCROUT1 = 1 << 2
	MCROUT2 = 1 << 3 // on PCs, enables the interrupt output
	MCRLoop = 1 << 4 // loopback: THR feeds RBR, MCR outputs feed MSR inputs
	mcrMask = 0x1f
)

// LSR bits.
const (
	LSRDataReady  = 1 << 0 // DR: a byte is waiting in RBR
	LSROverrun    = 1 << 1 // OE
	LSRParity     = 1 << 2 // PE
	LSRFraming    = 1 << 3 // FE
	LSRBreak      = 1 << 4 // BI
	LSRTHREmpty   = 1 << 5 // THRE: THR can take a byte
	LSRTxEmpty    = 1 << 6 // TEMT: THR and shift register both empty
	LSRFIFOError  = 1 << 7 // an error byte is in the receive FIFO
	lsrErrors     = LSROverrun | LSRParity | LSRFraming | LSRBreak
	msrDeltaMask  = MSRDeltaCTS | MSRDeltaDSR | MSRRingEnded | MSRDeltaDCD
	msrNoLoopback = MSRCTS | MSRDSR | MSRDCD // a terminal is attached
)

// MSR bits: the low nibble records changes since the last MSR read.
const (
	MSRDeltaCTS  = 1 << 0
	MSRDeltaDSR  = 1 << 1
	MSRRingEnded = 1 << 2 // TERI: RI went from on to off
	MSRDeltaDCD  = 1 << 3
	MSRCTS       = 1 << 4
	MSRDSR       = 1 << 5
	MSRRI        = 1 << 6
	MSRDCD       = 1 << 7
)

const (
	// RxFIFOSize is the receive FIFO the guest sees.
	RxFIFOSize = 64
	// RxQueueSize is the most host input a Serial holds, FIFO included.
	RxQueueSize = 4096
)

// Serial is a 16550A UART. It is safe for concurrent use by vCPU threads and
// the goroutine that feeds it input. Its output is written to out by a
// goroutine of its own; Flush waits for it.
type Serial struct {
	mu   sync.Mutex // guards r and tx
	irq  IRQLine
	out  io.Writer
	r    serialRegs
	tx   txQueue
	room chan struct{} // signalled when a full receive queue drains

	lineMu   sync.Mutex // guards irqHigh and detached; taken before mu
	irqHigh  bool       // the level last driven on irq
	detached bool       // Detach was called: drive irq no more

	// Counters, read with Stats.
	outErrors, irqErrors, dropped atomic.Uint64
}

// serialRegs is everything the guest can observe; SerialState mirrors it.
type serialRegs struct {
	dll, dlm, ier, fcr, lcr, mcr, lsr, msr, scr byte
	thrPending                                  bool // THRE interrupt pending
	rx                                          []byte
}

// SerialStats counts failures that the guest cannot be told about.
type SerialStats struct {
	OutErrors uint64 // writes to out that failed
	Dropped   uint64 // output bytes lost: to failed writes, or sent into a full buffer
	IRQErrors uint64 // SetLevel calls that failed
}

// NewSerial returns a UART in its power-on state: 8N1, interrupts off,
// divisor 12 (9600 baud). Transmitted bytes go to out; irq is its line.
func NewSerial(irq IRQLine, out io.Writer) *Serial {
	s := &Serial{irq: irq, out: out, room: make(chan struct{}, 1)}
	s.tx.progress = make(chan struct{}, 1)
	s.r.dll = 12
	s.r.lcr = LCR8N1
	s.r.msr = msrNoLoopback
	return s
}

// Read handles a guest read of the register at off. Wider reads read one
// register and zero-fill the rest.
func (s *Serial) Read(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	clear(p)
	s.mu.Lock()
	p[0] = s.readReg(off)
	s.mu.Unlock()
	s.syncIRQ()
}

// Write handles a guest write to the register at off. Wider writes use the
// low byte.
func (s *Serial) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	s.mu.Lock()
	s.writeReg(off, p[0])
	s.mu.Unlock()
	s.syncIRQ()
}

func (s *Serial) readReg(off uint64) byte {
	r := &s.r
	dlab := r.lcr&LCRDLAB != 0
	switch off {
	case SerialRBR:
		if dlab {
			return r.dll
		}
		return s.popRx()
	case SerialIER:
		if dlab {
			return r.dlm
		}
		return r.ier
	case SerialIIR:
		id := s.interruptID()
		if id == IIRTHREmpty {
			r.thrPending = false // reading IIR acknowledges THRE
		}
		if r.fcr&FCREnable != 0 {
			id |= IIRFIFOs
		}
		return id
	case SerialLCR:
		return r.lcr
	case SerialMCR:
		return r.mcr
	case SerialLSR:
		v := r.lsr
		if s.thrEmpty() {
			v |= LSRTHREmpty
		}
		if s.txEmpty() {
			v |= LSRTxEmpty
		}
		if len(r.rx) > 0 {
			v |= LSRDataReady
		}
		r.lsr &^= lsrErrors // reading LSR clears the error bits
		return v
	case SerialMSR:
		v := r.msr
		r.msr &^= msrDeltaMask
		return v
	case SerialSCR:
		return r.scr
	}
	return 0xff
}

func (s *Serial) writeReg(off uint64, v byte) {
	r := &s.r
	dlab := r.lcr&LCRDLAB != 0
	switch off {
	case SerialTHR:
		if dlab {
			r.dll = v
			return
		}
		s.transmit(v)
		// The byte went to the queue: THR is empty again unless the
		// queue is nearly full, and then the writer re-arms it.
		r.thrPending = s.thrEmpty()
	case SerialIER:
		if dlab {
			r.dlm = v
			return
		}
		old := r.ier
		r.ier = v & ierMask
		if r.ier&IERTHREmpty != 0 && old&IERTHREmpty == 0 && s.thrEmpty() {
			r.thrPending = true // enabling ETBEI with THR empty interrupts
		}
		if r.ier&IERTHREmpty == 0 {
			r.thrPending = false
		}
	case SerialFCR:
		if v&FCREnable != 0 && v&FCRClearRx != 0 {
			s.dropRx(min(len(r.rx), RxFIFOSize))
		}
		r.fcr = v &^ (FCRClearRx | FCRClearTx)
	case SerialLCR:
		r.lcr = v
	case SerialMCR:
		s.setMCR(v & mcrMask)
	case SerialSCR:
		r.scr = v
	}
}

// transmit queues one byte for out, or puts it back into the receiver in
// loopback mode.
func (s *Serial) transmit(v byte) {
	if s.r.mcr&MCRLoop != 0 {
		if len(s.r.rx) >= RxQueueSize {
			s.r.lsr |= LSROverrun
			return
		}
		s.r.rx = append(s.r.rx, v)
		return
	}
	s.queueTx(v)
}

// setMCR writes MCR and updates the modem inputs: in loopback they follow
// the outputs (CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2), otherwise a terminal
// holds CTS, DSR and DCD on. Changes set the MSR delta bits.
func (s *Serial) setMCR(v byte) {
	s.r.mcr = v
	in := byte(msrNoLoopback)
	if v&MCRLoop != 0 {
		in = 0
		if v&MCRRTS != 0 {
			in |= MSRCTS
		}
		if v&MCRDTR != 0 {
			in |= MSRDSR
		}
		if v&MCROUT1 != 0 {
			in |= MSRRI
		}
		if v&MCROUT2 != 0 {
			in |= MSRDCD
		}
	}
	old := s.r.msr
	delta := old & msrDeltaMask
	changed := old ^ in
	if changed&MSRCTS != 0 {
		delta |= MSRDeltaCTS
	}
	if changed&MSRDSR != 0 {
		delta |= MSRDeltaDSR
	}
	if changed&MSRDCD != 0 {
		delta |= MSRDeltaDCD
	}
	if old&MSRRI != 0 && in&MSRRI == 0 {
		delta |= MSRRingEnded
	}
	s.r.msr = in&^msrDeltaMask | delta
}

// interruptID returns the IIR source bits of the highest-priority pending
// interrupt, or IIRNone.
func (s *Serial) interruptID() byte {
	r := &s.r
	switch {
	case r.ier&IERLineStatus != 0 && r.lsr&lsrErrors != 0:
		return IIRLineStatus
	case r.ier&IERRxData != 0 && len(r.rx) > 0:
		return IIRRxData
	case r.ier&IERTHREmpty != 0 && r.thrPending:
		return IIRTHREmpty
	case r.ier&IERModem != 0 && r.msr&msrDeltaMask != 0:
		return IIRModem
	}
	return IIRNone
}

// syncIRQ drives the line to match the IIR, calling SetLevel only when the
// level changes. It is called without mu, after a change: lineMu orders
// the callers (vCPUs, the input feeder, the writer goroutine), and each
// reads the registers afresh under it, so the last one to run leaves the
// line at the level of the latest state whatever order they ran in.
func (s *Serial) syncIRQ() {
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	s.mu.Lock()
	high := s.interruptID() != IIRNone
	s.mu.Unlock()
	if high == s.irqHigh || s.detached {
		return
	}
	s.irqHigh = high
	if err := s.irq.SetLevel(high); err != nil {
		s.irqErrors.Add(1)
	}
}

// Detach stops the UART from driving its interrupt line, for when the
// interrupt controller goes away before a writer that Flush gave up on has
// finished.
func (s *Serial) Detach() {
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	s.detached = true
}

// Stats returns the failure counters.
func (s *Serial) Stats() SerialStats {
	return SerialStats{OutErrors: s.outErrors.Load(), Dropped: s.dropped.Load(), IRQErrors: s.irqErrors.Load()}
}
