package devices

// The fixed ACPI hardware registers of a full (not hardware-reduced) ACPI
// platform (ACPI 6.5, 4.8 "ACPI Hardware Model"): the PM1a event block
// (status and enable), the PM1a control block, and a reset register. The
// FADT names their ports; the power button is the fixed-feature one, its
// events raise the SCI (a level-triggered ISA IRQ, 9 on a PC).
//
//	off  size  register    read                    write
//	0    2     PM1a_STS    the status bits          1 clears a bit (write-1-to-clear)
//	2    2     PM1a_EN     the enable bits          the enable bits
//	4    2     PM1a_CNT    SCI_EN (always 1)        SLP_TYP with SLP_EN: sleep; S5 powers off
//	8    1     RESET_REG   0                        the reset value resets
//
// The SCI is asserted while a status bit is set whose enable bit is set.
// Only the power button's status is ever set: govmm has no PM timer, no
// sleep button, no RTC alarm and no global lock. With no SMI command port
// in the FADT the platform is always in ACPI mode, so SCI_EN reads 1.
//
// Accesses of any width at any offset are taken a byte at a time, as the
// registers are laid out little-endian: a 4-byte read at 0 returns status
// and enable together.

import (
	"sync"
	"sync/atomic"
)

// Where a PC-like machine puts the block, and its SCI: ports 0x600-0x608
// (QEMU's q35 uses 0x600 too), inside the PCI host bridge's first I/O
// window and clear of every legacy device; ISA IRQ 9, the SCI of PC
// chipsets since the PIIX4.
const (
	PortACPIPM = 0x600
	IRQSCI     = 9
)

// Register offsets and the block's size.
const (
	ACPIPMStatus  = 0 // PM1a_STS, 2 bytes
	ACPIPMEnable  = 2 // PM1a_EN, 2 bytes
	ACPIPMControl = 4 // PM1a_CNT, 2 bytes
	ACPIPMReset   = 8 // RESET_REG, 1 byte
	ACPIPMSize    = 9
)

// PM1 status and enable bits (4.8.3.1, Tables 4.16 and 4.17).
const (
	PM1PowerButton = 1 << 8  // PWRBTN_STS / PWRBTN_EN
	PM1Wake        = 1 << 15 // WAK_STS: set when the system wakes (never, here)
)

// PM1 control bits (4.8.3.2.1, Table 4.18).
const (
	PM1SCIEnable     = 1 << 0  // SCI_EN: the platform is in ACPI mode
	PM1SleepTypeMask = 7 << 10 // SLP_TYP
	PM1SleepEnable   = 1 << 13 // SLP_EN: enter the sleep state SLP_TYP names
	pm1SleepTypeBit  = 10
)

// ACPIPM is the ACPI register block. It is safe for concurrent use.
type ACPIPM struct {
	sci        IRQLine
	s5         uint16 // the SLP_TYP value that powers off
	resetValue byte
	powerOff   func()
	reset      func()

	mu     sync.Mutex
	status uint16
	enable uint16

	lineMu    sync.Mutex // keeps SCI updates in the order of the state they follow
	irqErrors atomic.Uint64
	sleeps    atomic.Uint64 // SLP_EN writes of a type other than S5
}

// ACPIPMConfig is what NewACPIPM needs.
type ACPIPMConfig struct {
	SCI         IRQLine
	SleepTypeS5 uint8 // SLP_TYP of S5, as the DSDT's \_S5 says
	ResetValue  uint8 // the value written to RESET_REG that resets, as the FADT says
	// PowerOff and Reset are called on the vCPU's thread, without the
	// device's lock, when the guest enters S5 or writes the reset value;
	// they should make the VM stop and return.
	PowerOff func()
	Reset    func()
}

// NewACPIPM returns the register block with nothing pending.
func NewACPIPM(c ACPIPMConfig) *ACPIPM {
	return &ACPIPM{sci: c.SCI, s5: uint16(c.SleepTypeS5), resetValue: c.ResetValue, powerOff: c.PowerOff, reset: c.Reset}
}

// PressPowerButton is a press of the fixed-feature power button: it sets
// PWRBTN_STS, which raises the SCI when the guest has enabled it. It may
// be called from any goroutine.
func (p *ACPIPM) PressPowerButton() {
	p.mu.Lock()
	p.status |= PM1PowerButton
	p.mu.Unlock()
	p.syncSCI()
}

// ACPIPMStats counts what went wrong or was ignored.
type ACPIPMStats struct {
	IRQErrors uint64 // SetLevel calls on the SCI that failed
	Sleeps    uint64 // sleep requests for states other than S5, ignored
}

// Stats returns the counters.
func (p *ACPIPM) Stats() ACPIPMStats {
	return ACPIPMStats{IRQErrors: p.irqErrors.Load(), Sleeps: p.sleeps.Load()}
}

// Read returns the registers' bytes.
func (p *ACPIPM) Read(off uint64, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range b {
		b[i] = p.readByte(off + uint64(i))
	}
}

func (p *ACPIPM) readByte(off uint64) byte {
	switch off {
	case ACPIPMStatus, ACPIPMStatus + 1:
		return byte(p.status >> (8 * (off - ACPIPMStatus)))
	case ACPIPMEnable, ACPIPMEnable + 1:
		return byte(p.enable >> (8 * (off - ACPIPMEnable)))
	case ACPIPMControl:
		return PM1SCIEnable
	}
	return 0 // the rest of PM1a_CNT, RESET_REG and the gap
}

// Write acts on the registers' bytes, then on a sleep or reset request.
func (p *ACPIPM) Write(off uint64, b []byte) {
	var s5, reset bool
	p.mu.Lock()
	for i, v := range b {
		o := off + uint64(i)
		switch o {
		case ACPIPMStatus, ACPIPMStatus + 1:
			p.status &^= uint16(v) << (8 * (o - ACPIPMStatus))
		case ACPIPMEnable, ACPIPMEnable + 1:
			shift := 8 * (o - ACPIPMEnable)
			p.enable = p.enable&^(0xFF<<shift) | uint16(v)<<shift
		case ACPIPMControl + 1: // SLP_TYP and SLP_EN live in the high byte
			cnt := uint16(v) << 8
			if cnt&PM1SleepEnable != 0 {
				if (cnt&PM1SleepTypeMask)>>pm1SleepTypeBit == p.s5 {
					s5 = true
				} else {
					p.sleeps.Add(1)
				}
			}
		case ACPIPMReset:
			reset = reset || v == p.resetValue
		}
	}
	p.mu.Unlock()
	p.syncSCI()
	switch {
	case s5 && p.powerOff != nil:
		p.powerOff()
	case reset && p.reset != nil:
		p.reset()
	}
}

// syncSCI drives the SCI to match the pending, enabled events.
func (p *ACPIPM) syncSCI() {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	p.mu.Lock()
	high := p.status&p.enable != 0
	p.mu.Unlock()
	if p.sci == nil {
		return
	}
	if err := p.sci.SetLevel(high); err != nil {
		p.irqErrors.Add(1)
	}
}

// ACPIPMState is the state of an ACPIPM.
type ACPIPMState struct {
	Status, Enable uint16
}

// State returns the registers.
func (p *ACPIPM) State() ACPIPMState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ACPIPMState{Status: p.status, Enable: p.enable}
}

// RestoreACPIPM rebuilds the device from st and drives the SCI to match.
func RestoreACPIPM(st ACPIPMState, c ACPIPMConfig) *ACPIPM {
	p := NewACPIPM(c)
	p.Restore(st)
	return p
}

// Restore puts the registers in state st and drives the SCI to match.
func (p *ACPIPM) Restore(st ACPIPMState) {
	p.mu.Lock()
	p.status, p.enable = st.Status, st.Enable
	p.mu.Unlock()
	p.syncSCI()
}
