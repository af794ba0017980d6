package devices

import (
	"encoding/binary"
	"errors"
	"testing"
)

// pmRig is an ACPIPM with a recording SCI and counted power-off and reset.
type pmRig struct {
	pm                *ACPIPM
	sci               *testIRQ
	powerOffs, resets int
}

func newPMRig() *pmRig {
	r := &pmRig{sci: &testIRQ{}}
	r.pm = NewACPIPM(ACPIPMConfig{SCI: r.sci, SleepTypeS5: 5, ResetValue: 1,
		PowerOff: func() { r.powerOffs++ }, Reset: func() { r.resets++ }})
	return r
}

func write16(d Device, off uint64, v uint16) {
	d.Write(off, binary.LittleEndian.AppendUint16(nil, v))
}

func read16(d Device, off uint64) uint16 {
	p := make([]byte, 2)
	d.Read(off, p)
	return binary.LittleEndian.Uint16(p)
}

// TestACPIPMPowerButton follows Linux's ACPICA through a press of the
// fixed power button: enable PWRBTN_EN, see the SCI, read PM1a_STS,
// clear the bit by writing it back, see the SCI drop.
func TestACPIPMPowerButton(t *testing.T) {
	r := newPMRig()
	if got := read16(r.pm, ACPIPMControl); got&PM1SCIEnable == 0 {
		t.Errorf("PM1a_CNT = %#x, want SCI_EN set (always in ACPI mode)", got)
	}
	r.pm.PressPowerButton()
	if r.sci.level() {
		t.Errorf("SCI high after a press with PWRBTN_EN clear, want low")
	}
	if got := read16(r.pm, ACPIPMStatus); got != PM1PowerButton {
		t.Errorf("PM1a_STS = %#x, want PWRBTN_STS (%#x) even while disabled", got, PM1PowerButton)
	}
	write16(r.pm, ACPIPMStatus, PM1PowerButton) // clear the stale press, as ACPICA does at start
	write16(r.pm, ACPIPMEnable, PM1PowerButton)
	if got := read16(r.pm, ACPIPMEnable); got != PM1PowerButton {
		t.Errorf("PM1a_EN = %#x, want %#x", got, PM1PowerButton)
	}
	if r.sci.level() {
		t.Errorf("SCI high with nothing pending")
	}
	r.pm.PressPowerButton()
	if !r.sci.level() {
		t.Errorf("SCI low after a press with PWRBTN_EN set, want high")
	}
	// A 4-byte read gives status and enable together.
	p := make([]byte, 4)
	r.pm.Read(ACPIPMStatus, p)
	if got := binary.LittleEndian.Uint32(p); got != uint32(PM1PowerButton)|uint32(PM1PowerButton)<<16 {
		t.Errorf("Read(0, 4 bytes) = %#x, want status and enable", got)
	}
	write16(r.pm, ACPIPMStatus, 0) // writing 0 clears nothing
	if !r.sci.level() {
		t.Errorf("SCI dropped after writing 0 to PM1a_STS, want it held")
	}
	write16(r.pm, ACPIPMStatus, PM1PowerButton)
	if r.sci.level() || read16(r.pm, ACPIPMStatus) != 0 {
		t.Errorf("after write-1-to-clear: SCI %v, PM1a_STS %#x, want low and 0", r.sci.level(), read16(r.pm, ACPIPMStatus))
	}
	if r.powerOffs != 0 || r.resets != 0 {
		t.Errorf("the button alone powered off %d times, reset %d, want 0", r.powerOffs, r.resets)
	}
}

func TestACPIPMSleepAndReset(t *testing.T) {
	tests := []struct {
		name                 string
		off                  uint64
		p                    []byte
		powerOffs, resets, n int
	}{
		{"S5 with SLP_EN powers off", ACPIPMControl, le16(5<<10 | PM1SleepEnable), 1, 0, 0},
		{"S5 high byte alone", ACPIPMControl + 1, []byte{byte((5<<10 | PM1SleepEnable) >> 8)}, 1, 0, 0},
		{"S5 without SLP_EN does nothing", ACPIPMControl, le16(5 << 10), 0, 0, 0},
		{"S3 is counted, not done", ACPIPMControl, le16(3<<10 | PM1SleepEnable), 0, 0, 1},
		{"reset value resets", ACPIPMReset, []byte{1}, 0, 1, 0},
		{"another value does not", ACPIPMReset, []byte{6}, 0, 0, 0},
	}
	for _, tt := range tests {
		r := newPMRig()
		r.pm.Write(tt.off, tt.p)
		if r.powerOffs != tt.powerOffs || r.resets != tt.resets || r.pm.Stats().Sleeps != uint64(tt.n) {
			t.Errorf("%s: Write(%d, % x) = %d power-offs, %d resets, %d other sleeps; want %d, %d, %d",
				tt.name, tt.off, tt.p, r.powerOffs, r.resets, r.pm.Stats().Sleeps, tt.powerOffs, tt.resets, tt.n)
		}
	}
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

func TestACPIPMStateAndErrors(t *testing.T) {
	r := newPMRig()
	write16(r.pm, ACPIPMEnable, PM1PowerButton)
	r.pm.PressPowerButton()
	st := r.pm.State()
	sci := &testIRQ{}
	back := RestoreACPIPM(st, ACPIPMConfig{SCI: sci, SleepTypeS5: 5})
	if back.State() != st || !sci.level() {
		t.Errorf("RestoreACPIPM(%+v) = %+v with SCI %v, want the same state and the SCI high", st, back.State(), sci.level())
	}
	bad := &testIRQ{err: errors.New("no irqchip")}
	pm := NewACPIPM(ACPIPMConfig{SCI: bad, SleepTypeS5: 5})
	pm.PressPowerButton()
	if got := pm.Stats().IRQErrors; got != 1 {
		t.Errorf("Stats().IRQErrors = %d after a failed SetLevel, want 1", got)
	}
}
