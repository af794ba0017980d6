package devices

import (
	"reflect"
	"testing"
	"time"
)

// TestPITFreeze checks a pause of the userspace PIT: no IRQ 0 while it is
// frozen however long, its count where it stood, and the same rate after
// Restore.
func TestPITFreeze(t *testing.T) {
	a := newPITAt(t)
	regWrite(a.p, PITControl, 0x34) // counter 0, LSB then MSB, mode 2
	regWrite(a.p, 0, byte(11932&0xff))
	a.out(0, byte(11932>>8)) // 100 Hz
	a.clock.advance(time.Second)
	if got := a.irq.count(); got != 99 { // 10000.2 us: the 100th is just after 1 s
		t.Fatalf("IRQ 0 edges in 1 s at 100 Hz = %d, want 99", got)
	}
	_, before := a.readBack(0)
	s := a.p.Freeze()
	edges := a.irq.count()
	a.clock.advance(10 * time.Second)
	if got := a.irq.count() - edges; got != 0 {
		t.Errorf("IRQ 0 edges while frozen for 10 s = %d, want 0", got)
	}
	a.p.Restore(s)
	if _, after := a.readBack(0); after != before {
		t.Errorf("count after Freeze, 10 s and Restore = %d, want %d as at the freeze", after, before)
	}
	a.clock.advance(time.Second)
	if got := a.irq.count() - edges; got < 99 || got > 101 {
		t.Errorf("IRQ 0 edges in 1 s after Restore = %d, want 100", got)
	}
}

// TestRestoreInPlace checks that each device restored in place reads back
// the state it was given.
func TestRestoreInPlace(t *testing.T) {
	irq := &pulseCounter{}
	serial := NewSerial(irq, nil)
	sst := SerialState{DLL: 1, LCR: 3, IER: 2, THRInterrupt: true, Rx: []byte("ab"), MSR: 0xb0}
	if err := serial.Restore(sst); err != nil {
		t.Fatal(err)
	}
	if got := serial.State(); !reflect.DeepEqual(got, sst) {
		t.Errorf("Serial.Restore(%+v): State() = %+v", sst, got)
	}
	if !irq.high {
		t.Errorf("Serial.Restore with THRE pending and its interrupt enabled left IRQ 4 low")
	}
	if err := serial.Restore(SerialState{Rx: make([]byte, RxQueueSize+1)}); err == nil {
		t.Errorf("Serial.Restore with %d received bytes = nil, want an error", RxQueueSize+1)
	}

	k := NewI8042(nil, nil)
	kst := I8042State{Status: 1, CmdByte: 2, Output: 3, OutPort: 4, Pending: 5}
	k.Restore(kst)
	if got := k.State(); got != kst {
		t.Errorf("I8042.Restore(%+v): State() = %+v", kst, got)
	}
	r := NewRTC(time.Now)
	rst := RTCState{Index: 7, Offset: time.Hour}
	rst.RAM[RTCRegB] = RTCB24Hour
	r.Restore(rst)
	if got := r.State(); got != rst {
		t.Errorf("RTC.Restore(%+v): State() = %+v", rst, got)
	}
	p := NewPOST()
	p.Restore(POSTState{Writes: 9, Last: 0x42})
	if got := p.State(); got != (POSTState{Writes: 9, Last: 0x42}) {
		t.Errorf("POST.Restore: State() = %+v", got)
	}
	sci := &pulseCounter{}
	pm := NewACPIPM(ACPIPMConfig{SCI: sci})
	pm.Restore(ACPIPMState{Status: PM1PowerButton, Enable: PM1PowerButton})
	if got := pm.State(); got != (ACPIPMState{Status: PM1PowerButton, Enable: PM1PowerButton}) || !sci.high {
		t.Errorf("ACPIPM.Restore(a pending, enabled power button): State() = %+v, SCI high %v; want it back and the SCI high", got, sci.high)
	}
}
