package devices

import (
	"fmt"
	"io"
)

// SerialState is the guest-visible state of a Serial.
type SerialState struct {
	DLL, DLM, IER, FCR, LCR, MCR, SCR byte
	LSR                               byte // error bits only
	MSR                               byte
	THRInterrupt                      bool   // a THRE interrupt is pending
	Rx                                []byte // received bytes not yet read, FIFO first
}

// State returns a copy of the UART's state. Output still queued for the
// host writer is not part of it: Flush first.
func (s *Serial) State() SerialState {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.r
	return SerialState{
		DLL: r.dll, DLM: r.dlm, IER: r.ier, FCR: r.fcr, LCR: r.lcr, MCR: r.mcr,
		SCR: r.scr, LSR: r.lsr, MSR: r.msr, THRInterrupt: r.thrPending,
		Rx: append([]byte(nil), r.rx...),
	}
}

// RestoreSerial rebuilds a UART from st and drives irq to the level its
// state implies.
func RestoreSerial(st SerialState, irq IRQLine, out io.Writer) (*Serial, error) {
	if len(st.Rx) > RxQueueSize {
		return nil, fmt.Errorf("restore serial: %d received bytes exceed the %d-byte queue: the state is corrupt or from a newer govmm", len(st.Rx), RxQueueSize)
	}
	s := NewSerial(irq, out)
	s.r = serialRegs{
		dll: st.DLL, dlm: st.DLM, ier: st.IER & ierMask, fcr: st.FCR, lcr: st.LCR,
		mcr: st.MCR & mcrMask, scr: st.SCR, lsr: st.LSR & lsrErrors, msr: st.MSR,
		thrPending: st.THRInterrupt, rx: append([]byte(nil), st.Rx...),
	}
	s.irqHigh = s.interruptID() != IIRNone
	if err := irq.SetLevel(s.irqHigh); err != nil {
		return nil, fmt.Errorf("restore serial: set IRQ level %v: %w (check the interrupt controller was created first)", s.irqHigh, err)
	}
	return s, nil
}
