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
	s := NewSerial(irq, out)
	if err := s.Restore(st); err != nil {
		return nil, err
	}
	return s, nil
}

// Restore puts the UART's registers and received bytes in state st and
// drives its line to the level they imply. Output still queued for the
// host writer stays queued.
func (s *Serial) Restore(st SerialState) error {
	if len(st.Rx) > RxQueueSize {
		return fmt.Errorf("restore serial: %d received bytes exceed the %d-byte queue: the state is corrupt or from a newer govmm", len(st.Rx), RxQueueSize)
	}
	s.lineMu.Lock()
	defer s.lineMu.Unlock()
	s.mu.Lock()
	s.r = serialRegs{
		dll: st.DLL, dlm: st.DLM, ier: st.IER & ierMask, fcr: st.FCR, lcr: st.LCR,
		mcr: st.MCR & mcrMask, scr: st.SCR, lsr: st.LSR & lsrErrors, msr: st.MSR,
		thrPending: st.THRInterrupt, rx: append([]byte(nil), st.Rx...),
	}
	high := s.interruptID() != IIRNone
	s.mu.Unlock()
	s.irqHigh = high
	if s.detached {
		return nil
	}
	if err := s.irq.SetLevel(high); err != nil {
		return fmt.Errorf("restore serial: set IRQ level %v: %w (check the interrupt controller was created first)", high, err)
	}
	return nil
}
