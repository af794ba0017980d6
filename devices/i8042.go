package devices

// An 8042 keyboard controller with no keyboard or mouse behind it: enough
// for Linux's probe and for the guest to reset the machine through it.
//
// Register map (offset from port 0x60; register it at PortI8042Data size 1,
// and at PortI8042Command size 1 through Offset(kbc, I8042CommandOffset)):
//
//	off  read                write
//	0    output buffer       data for the keyboard, or a command's argument
//	4    status register     controller command
//
// Commands handled:
//
//	0x20        read the command byte into the output buffer
//	0x60 b      write the command byte
//	0xa7/0xa8   disable/enable the mouse port (command byte bit 5)
//	0xaa        self-test: 0x55 in the output buffer, sets the system flag
//	0xab        keyboard interface test: 0x00 (no error)
//	0xad/0xae   disable/enable the keyboard (command byte bit 4)
//	0xd0        read the output port
//	0xd1 b      write the output port; clearing bit 0 resets the CPU
//	0xd2 b      put b in the output buffer as if the keyboard sent it
//	0xf0-0xff   pulse output-port lines low for bits that are 0; bit 0 is
//	            the reset line, so 0xfe (and any even value) resets
//
// Other commands are ignored, as are bytes written for the keyboard (none
// is attached, so the guest's keyboard driver times out). The controller
// raises no interrupts.

import "sync"

// Register offsets.
const (
	I8042DataOffset    = 0 // output buffer (read), data (write)
	I8042CommandOffset = 4 // status (read), command (write)
)

// Status register bits.
const (
	I8042OutputFull = 1 << 0 // OBF: the output buffer holds a byte
	I8042InputFull  = 1 << 1 // IBF: the controller has not taken a write yet
	I8042System     = 1 << 2 // SYS: set after a successful self-test
	I8042LastCmd    = 1 << 3 // A2: the last write was to the command port
	I8042Unlocked   = 1 << 4 // INH: 1 = keyboard not inhibited
	I8042AuxData    = 1 << 5 // the output buffer byte came from the mouse
	I8042Timeout    = 1 << 6
	I8042ParityErr  = 1 << 7
)

// Command byte bits.
const (
	I8042CmdKbdIRQ     = 1 << 0 // keyboard interrupt enable
	I8042CmdAuxIRQ     = 1 << 1 // mouse interrupt enable
	I8042CmdSystem     = 1 << 2 // system flag
	I8042CmdKbdDisable = 1 << 4
	I8042CmdAuxDisable = 1 << 5
	I8042CmdTranslate  = 1 << 6 // translate scan codes to set 1
)

// Output port bits.
const (
	I8042OutReset = 1 << 0 // system reset line, active low
	I8042OutA20   = 1 << 1 // A20 gate
)

// Controller commands.
const (
	I8042ReadCmdByte    = 0x20
	I8042WriteCmdByte   = 0x60
	I8042DisableAux     = 0xa7
	I8042EnableAux      = 0xa8
	I8042SelfTest       = 0xaa
	I8042KbdTest        = 0xab
	I8042DisableKbd     = 0xad
	I8042EnableKbd      = 0xae
	I8042ReadOutPort    = 0xd0
	I8042WriteOutPort   = 0xd1
	I8042WriteKbdOutput = 0xd2
	I8042PulseReset     = 0xfe
	i8042PulseFirst     = 0xf0
	i8042SelfTestOK     = 0x55
)

// I8042 is the keyboard controller. It is safe for concurrent use.
type I8042 struct {
	mu    sync.Mutex
	reset func()
	st    I8042State
}

// I8042State is the guest-visible state of an I8042.
type I8042State struct {
	Status  byte // status register
	CmdByte byte // controller command byte
	Output  byte // output buffer: the last byte the controller produced
	OutPort byte // output port (reset line, A20)
	// Pending is the command waiting for its argument on the data port, or 0.
	Pending byte
}

// NewI8042 returns a controller in its power-on state. reset is called
// (on the vCPU's thread, with no lock held) when the guest pulses the reset
// line; it should ask the VM to reboot or stop, not block.
func NewI8042(reset func()) *I8042 {
	return RestoreI8042(I8042State{
		Status:  I8042Unlocked,
		CmdByte: I8042CmdKbdIRQ | I8042CmdTranslate,
		OutPort: I8042OutReset | I8042OutA20,
	}, reset)
}

// RestoreI8042 rebuilds a controller from st.
func RestoreI8042(st I8042State, reset func()) *I8042 {
	return &I8042{reset: reset, st: st}
}

// Restore puts the controller in state st.
func (k *I8042) Restore(st I8042State) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.st = st
}

// State returns the controller's state.
func (k *I8042) State() I8042State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st
}

// Read handles a guest read; only the low byte of a wider read is used.
func (k *I8042) Read(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	clear(p)
	k.mu.Lock()
	defer k.mu.Unlock()
	switch off {
	case I8042DataOffset:
		p[0] = k.st.Output
		k.st.Status &^= I8042OutputFull | I8042AuxData
	case I8042CommandOffset:
		p[0] = k.st.Status
	default:
		p[0] = 0xff
	}
}

// Write handles a guest write of the low byte of p.
func (k *I8042) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	k.mu.Lock()
	var reset bool
	switch off {
	case I8042DataOffset:
		k.st.Status &^= I8042LastCmd
		reset = k.data(p[0])
	case I8042CommandOffset:
		k.st.Status |= I8042LastCmd
		reset = k.command(p[0])
	}
	k.mu.Unlock()
	if reset && k.reset != nil {
		k.reset()
	}
}

// output puts v in the output buffer.
func (k *I8042) output(v byte) {
	k.st.Output = v
	k.st.Status = k.st.Status&^I8042AuxData | I8042OutputFull
}

// command runs a controller command and reports whether it resets the CPU.
func (k *I8042) command(c byte) bool {
	k.st.Pending = 0
	switch c {
	case I8042ReadCmdByte:
		k.output(k.st.CmdByte)
	case I8042WriteCmdByte, I8042WriteOutPort, I8042WriteKbdOutput:
		k.st.Pending = c
	case I8042DisableAux:
		k.st.CmdByte |= I8042CmdAuxDisable
	case I8042EnableAux:
		k.st.CmdByte &^= I8042CmdAuxDisable
	case I8042SelfTest:
		k.st.Status |= I8042System
		k.output(i8042SelfTestOK)
	case I8042KbdTest:
		k.output(0)
	case I8042DisableKbd:
		k.st.CmdByte |= I8042CmdKbdDisable
	case I8042EnableKbd:
		k.st.CmdByte &^= I8042CmdKbdDisable
	case I8042ReadOutPort:
		k.output(k.st.OutPort)
	default:
		return c >= i8042PulseFirst && c&I8042OutReset == 0
	}
	return false
}

// data takes a byte written to the data port and reports whether it resets
// the CPU.
func (k *I8042) data(v byte) bool {
	cmd := k.st.Pending
	k.st.Pending = 0
	switch cmd {
	case I8042WriteCmdByte:
		k.st.CmdByte = v
		k.st.Status = k.st.Status&^I8042System | v&I8042CmdSystem
	case I8042WriteOutPort:
		k.st.OutPort = v
		return v&I8042OutReset == 0
	case I8042WriteKbdOutput:
		k.output(v)
	}
	return false
}
