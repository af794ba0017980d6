package devices

import (
	"bytes"
	"reflect"
	"testing"
)

func newTestSerial(t *testing.T) (*Serial, *testIRQ, *bytes.Buffer) {
	t.Helper()
	irq := &testIRQ{}
	var out bytes.Buffer
	return NewSerial(irq, &out), irq, &out
}

// linuxInit is what Linux's 8250 driver writes when it sets up a port at
// 115200 8N1 with FIFOs and interrupts.
var linuxInit = []struct {
	off uint64
	v   byte
}{
	{SerialLCR, LCRDLAB | LCR8N1},
	{SerialDLL, 1},
	{SerialDLM, 0},
	{SerialLCR, LCR8N1},
	{SerialFCR, FCREnable | FCRClearRx | FCRClearTx | 0xc0},
	{SerialMCR, MCROUT2 | MCRRTS | MCRDTR},
	{SerialIER, IERRxData},
}

func TestSerialLinuxInit(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	for _, w := range linuxInit {
		regWrite(s, w.off, w.v)
	}
	tests := []struct {
		name string
		off  uint64
		dlab bool
		want byte
	}{
		{"LCR", SerialLCR, false, LCR8N1},
		{"IER", SerialIER, false, IERRxData},
		{"MCR", SerialMCR, false, MCROUT2 | MCRRTS | MCRDTR},
		{"IIR", SerialIIR, false, IIRFIFOs | IIRNone},
		{"LSR", SerialLSR, false, LSRTHREmpty | LSRTxEmpty},
		{"MSR", SerialMSR, false, MSRCTS | MSRDSR | MSRDCD},
		{"DLL", SerialDLL, true, 1},
		{"DLM", SerialDLM, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dlab {
				regWrite(s, SerialLCR, LCRDLAB|LCR8N1)
				defer regWrite(s, SerialLCR, LCR8N1)
			}
			if got := regRead(s, tt.off); got != tt.want {
				t.Errorf("Read(%s) = %#02x, want %#02x", tt.name, got, tt.want)
			}
		})
	}
	if irq.level() {
		t.Errorf("IRQ level after init = high, want low")
	}
}

func TestSerialTransmit(t *testing.T) {
	s, _, out := newTestSerial(t)
	for _, c := range []byte("hello\r\n") {
		regWrite(s, SerialTHR, c)
	}
	flush(t, s)
	if got, want := out.String(), "hello\r\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	// With DLAB set, offset 0 is the divisor, not the THR.
	regWrite(s, SerialLCR, LCRDLAB)
	regWrite(s, SerialTHR, 'x')
	flush(t, s)
	if got, want := out.String(), "hello\r\n"; got != want {
		t.Errorf("output after DLL write = %q, want %q", got, want)
	}
}

func TestSerialTransmitErrorsCounted(t *testing.T) {
	s := NewSerial(&testIRQ{}, failingWriter{})
	regWrite(s, SerialTHR, 'a')
	flush(t, s)
	regWrite(s, SerialTHR, 'b')
	flush(t, s)
	if got, want := s.Stats(), (SerialStats{OutErrors: 2, Dropped: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestSerialReceive(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	regWrite(s, SerialIER, IERRxData)
	if n := s.Enqueue([]byte("ab")); n != 2 {
		t.Fatalf("Enqueue(ab) = %d, want 2", n)
	}
	if !irq.level() {
		t.Errorf("IRQ after Enqueue = low, want high")
	}
	steps := []struct {
		off  uint64
		want byte
	}{
		{SerialLSR, LSRDataReady | LSRTHREmpty | LSRTxEmpty},
		{SerialIIR, IIRRxData},
		{SerialRBR, 'a'},
		{SerialRBR, 'b'},
		{SerialLSR, LSRTHREmpty | LSRTxEmpty},
		{SerialIIR, IIRNone},
		{SerialRBR, 0},
	}
	for i, st := range steps {
		if got := regRead(s, st.off); got != st.want {
			t.Errorf("step %d: Read(%d) = %#02x, want %#02x", i, st.off, got, st.want)
		}
	}
	if irq.level() {
		t.Errorf("IRQ after draining = high, want low")
	}
}

func TestSerialEnqueueHoldsBack(t *testing.T) {
	s, _, _ := newTestSerial(t)
	big := bytes.Repeat([]byte{'z'}, RxQueueSize+100)
	if got := s.Enqueue(big); got != RxQueueSize {
		t.Fatalf("Enqueue(%d bytes) = %d, want %d", len(big), got, RxQueueSize)
	}
	if got := s.Enqueue([]byte("more")); got != 0 {
		t.Errorf("Enqueue on a full queue = %d, want 0", got)
	}
	select {
	case <-s.Room():
		t.Fatalf("Room() signalled before the guest read anything")
	default:
	}
	regRead(s, SerialRBR)
	select {
	case <-s.Room():
	default:
		t.Fatalf("Room() not signalled after the guest drained a byte")
	}
	if got := s.Enqueue([]byte("more")); got != 1 {
		t.Errorf("Enqueue after one read = %d, want 1", got)
	}
	// Clearing the FIFO drops the guest-visible 64 bytes only.
	regWrite(s, SerialFCR, FCREnable|FCRClearRx)
	if got, want := len(s.State().Rx), RxQueueSize-RxFIFOSize; got != want {
		t.Errorf("queued bytes after FCR clear = %d, want %d", got, want)
	}
}

func TestSerialIIRPriority(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *Serial)
		want  byte
	}{
		{"none", func(s *Serial) {}, IIRNone},
		{"THRE", func(s *Serial) { regWrite(s, SerialIER, IERTHREmpty) }, IIRTHREmpty},
		{"data over THRE", func(s *Serial) {
			regWrite(s, SerialIER, IERTHREmpty|IERRxData)
			s.Enqueue([]byte{1})
		}, IIRRxData},
		{"data not enabled", func(s *Serial) { s.Enqueue([]byte{1}) }, IIRNone},
		{"line status over data", func(s *Serial) {
			regWrite(s, SerialIER, IERLineStatus|IERRxData|IERTHREmpty)
			regWrite(s, SerialMCR, MCRLoop)
			for range RxQueueSize + 1 {
				regWrite(s, SerialTHR, 'x') // the last one overruns
			}
		}, IIRLineStatus},
		{"modem under THRE", func(s *Serial) {
			regWrite(s, SerialIER, IERModem|IERTHREmpty)
			regWrite(s, SerialMCR, MCRLoop)
		}, IIRTHREmpty},
		{"modem", func(s *Serial) {
			regWrite(s, SerialIER, IERModem)
			regWrite(s, SerialMCR, MCRLoop) // CTS, DSR, DCD drop
		}, IIRModem},
		{"FIFO bits", func(s *Serial) { regWrite(s, SerialFCR, FCREnable) }, IIRFIFOs | IIRNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, irq, _ := newTestSerial(t)
			tt.setup(s)
			if got, want := irq.level(), tt.want&IIRNone == 0; got != want {
				t.Errorf("IRQ level = %v, want %v", got, want)
			}
			if got := regRead(s, SerialIIR); got != tt.want {
				t.Errorf("Read(IIR) = %#02x, want %#02x", got, tt.want)
			}
		})
	}
}

func TestSerialTHREInterrupt(t *testing.T) {
	s, irq, _ := newTestSerial(t)
	steps := []struct {
		name   string
		do     func()
		wantUp bool
	}{
		{"enable ETBEI", func() { regWrite(s, SerialIER, IERTHREmpty) }, true},
		{"read IIR acknowledges", func() { regRead(s, SerialIIR) }, false},
		{"THR write re-arms", func() { regWrite(s, SerialTHR, 'a') }, true},
		{"disable ETBEI", func() { regWrite(s, SerialIER, 0) }, false},
		{"enable again", func() { regWrite(s, SerialIER, IERTHREmpty) }, true},
		{"rewrite IER keeps it", func() { regWrite(s, SerialIER, IERTHREmpty) }, true},
	}
	for _, st := range steps {
		st.do()
		if got := irq.level(); got != st.wantUp {
			t.Errorf("%s: IRQ level = %v, want %v", st.name, got, st.wantUp)
		}
	}
	if got, want := irq.calls, 5; got != want {
		t.Errorf("SetLevel calls = %d, want %d (only on change)", got, want)
	}
}

func TestSerialScratch(t *testing.T) {
	s, _, _ := newTestSerial(t)
	for _, v := range []byte{0x00, 0x55, 0xaa, 0xff} {
		regWrite(s, SerialSCR, v)
		if got := regRead(s, SerialSCR); got != v {
			t.Errorf("Read(SCR) after Write(%#02x) = %#02x, want %#02x", v, got, v)
		}
	}
}

func TestSerialLoopback(t *testing.T) {
	s, _, out := newTestSerial(t)
	// Linux's probe: loopback with OUT2 and RTS must show DCD and CTS.
	regWrite(s, SerialMCR, MCRLoop|MCROUT2|MCRRTS)
	if got, want := regRead(s, SerialMSR)&0xf0, byte(MSRDCD|MSRCTS); got != want {
		t.Errorf("Read(MSR) in loopback = %#02x, want %#02x", got, want)
	}
	regWrite(s, SerialMCR, MCRLoop|MCROUT1|MCRDTR)
	if got, want := regRead(s, SerialMSR), byte(MSRRI|MSRDSR|MSRDeltaDCD|MSRDeltaCTS|MSRDeltaDSR); got != want {
		t.Errorf("Read(MSR) after changing outputs = %#02x, want %#02x", got, want)
	}
	regWrite(s, SerialMCR, MCRLoop)
	if got, want := regRead(s, SerialMSR), byte(MSRDeltaDSR|MSRRingEnded); got != want {
		t.Errorf("Read(MSR) after dropping RI = %#02x, want %#02x", got, want)
	}
	regWrite(s, SerialTHR, 'q')
	if got := regRead(s, SerialRBR); got != 'q' {
		t.Errorf("Read(RBR) after loopback THR = %q, want 'q'", got)
	}
	if n := s.Enqueue([]byte("x")); n != 0 {
		t.Errorf("Enqueue in loopback = %d, want 0", n)
	}
	if out.Len() != 0 {
		t.Errorf("output in loopback = %q, want none", out.String())
	}
}

func TestSerialOverrunClearedByLSRRead(t *testing.T) {
	s, _, _ := newTestSerial(t)
	regWrite(s, SerialMCR, MCRLoop)
	for range RxQueueSize + 1 {
		regWrite(s, SerialTHR, 'x')
	}
	if got := regRead(s, SerialLSR); got&LSROverrun == 0 {
		t.Errorf("Read(LSR) after overrun = %#02x, want OE set", got)
	}
	if got := regRead(s, SerialLSR); got&LSROverrun != 0 {
		t.Errorf("second Read(LSR) = %#02x, want OE clear", got)
	}
}

func TestSerialStateRoundTrip(t *testing.T) {
	s, _, _ := newTestSerial(t)
	for _, w := range linuxInit {
		regWrite(s, w.off, w.v)
	}
	regWrite(s, SerialSCR, 0x5a)
	s.Enqueue([]byte("pending input"))
	want := s.State()

	irq := &testIRQ{}
	var out bytes.Buffer
	r, err := RestoreSerial(want, irq, &out)
	if err != nil {
		t.Fatalf("RestoreSerial: %v", err)
	}
	if got := r.State(); !reflect.DeepEqual(got, want) {
		t.Errorf("RestoreSerial(s.State()).State() = %+v, want %+v", got, want)
	}
	if !irq.level() {
		t.Errorf("IRQ level after restore = low, want high (data pending)")
	}
	if got := regRead(r, SerialRBR); got != 'p' {
		t.Errorf("Read(RBR) after restore = %q, want 'p'", got)
	}
	if _, err := RestoreSerial(SerialState{Rx: make([]byte, RxQueueSize+1)}, irq, &out); err == nil {
		t.Errorf("RestoreSerial(oversized Rx) = nil error, want one")
	}
}

// FuzzSerial drives the UART with any accesses, input, bursts of output
// into a stalled host writer, and releases of that writer. After every
// step the IRQ level must equal the IIR's "interrupt pending"; at the end
// every byte the guest transmitted must have reached the writer or been
// counted as dropped.
//
// Ops are byte pairs (op, v): op>>6 is 0 read register op&7; 1 enqueue
// op&0x3f copies of v as input; 2 write v to register op&7; 3 with op&1
// clear a burst of v*300 THR writes (at most
// 4*TxBufferSize in all), with op&1 set let the writer run
// until the buffer is empty.
func FuzzSerial(f *testing.F) {
	f.Add([]byte{0x83, 0x80, 0x80, 0x01, 0x83, 0x03, 0x81, 0x0f, 0x40, 'h', 0x02, 0x00})
	f.Add([]byte{0x84, 0x10, 0x80, 'x', 0x05, 0x00, 0x00, 0x00})
	f.Add([]byte{0x81, 0x02, 0xc0, 0xff, 0x05, 0x00, 0x02, 0x00, 0xc1, 0x00, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, ops []byte) {
		irq := &testIRQ{}
		out := newGatedWriter()
		s := NewSerial(irq, out)
		sent := 0 // bytes the guest transmitted to the line
		thr := func(v byte) {
			s.mu.Lock()
			toLine := s.r.lcr&LCRDLAB == 0 && s.r.mcr&MCRLoop == 0
			s.mu.Unlock()
			if toLine {
				sent++
			}
			regWrite(s, SerialTHR, v)
		}
		for len(ops) >= 2 {
			op, v := ops[0], ops[1]
			ops = ops[2:]
			off := uint64(op & 7)
			switch op >> 6 {
			case 0:
				regRead(s, off)
			case 1:
				s.Enqueue(bytes.Repeat([]byte{v}, int(op&0x3f)))
			case 2:
				if off == SerialTHR {
					thr(v)
				} else {
					regWrite(s, off, v)
				}
			default:
				if op&1 == 0 {
					// A burst, within a budget per input that still
					// fills the buffer a few times over.
					for range min(int(v)*300, 4*TxBufferSize-sent) {
						thr(v)
					}
				} else {
					out.release(t, s)
				}
			}
			s.mu.Lock()
			pending := s.interruptID() != IIRNone
			s.mu.Unlock()
			if got := irq.level(); got != pending {
				t.Fatalf("after op %#02x %#02x: IRQ level = %v, want %v (IIR pending)", op, v, got, pending)
			}
		}
		out.release(t, s)
		if got, dropped := out.len(), s.Stats().Dropped; got+int(dropped) != sent {
			t.Fatalf("written %d + dropped %d bytes, want the %d sent", got, dropped, sent)
		}
	})
}
