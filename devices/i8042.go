package devices

// An 8042 keyboard controller with a PS/2 keyboard on its first port and
// nothing on its mouse port: enough for Linux's i8042 and atkbd drivers to
// find a keyboard, for the host to type Ctrl-Alt-Del on it (CtrlAltDel),
// and for the guest to reset the machine through the controller.
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
//	0xd3 b      (mouse output buffer) and 0xd4 b (write to the mouse): b
//	            is taken and dropped, as no mouse is attached
//	0xf0-0xff   pulse output-port lines low for bits that are 0; bit 0 is
//	            the reset line, so 0xfe (and any even value) resets
//
// Other commands are ignored. A byte written to the data port with no
// command waiting for it goes to the keyboard, which answers (see
// keyboard) into a queue of its own of up to I8042QueueSize bytes. A byte
// moves from that queue to the output buffer when the buffer is empty and
// the keyboard port is enabled (command byte bit 4 clear); with
// translation on (command byte bit 6, as firmware leaves it and Linux
// keeps it) the controller turns the keyboard's scan code set 2 into set 1
// on the way. Whenever a byte not from the mouse enters the output buffer
// and the command byte's bit 0 is set, the controller pulses its interrupt
// line, IRQ 1 (edge-triggered, as ISA interrupts are).

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
	I8042WriteAuxOutput = 0xd3
	I8042WriteAux       = 0xd4
	I8042PulseReset     = 0xfe
	i8042PulseFirst     = 0xf0
	i8042SelfTestOK     = 0x55
)

// IRQKeyboard is the i8042's keyboard interrupt line.
const IRQKeyboard = 1

// I8042QueueSize is how many bytes the keyboard holds for the controller.
const I8042QueueSize = 16

// Keyboard commands (bytes written to the data port for the keyboard) and
// its answers.
const (
	KbdSetLEDs     = 0xed // b: lock LEDs; ACK, ACK
	KbdEcho        = 0xee // answers 0xee
	KbdScanSet     = 0xf0 // b: 0 reports the set (ACK, set), 1-3 selects it
	KbdGetID       = 0xf2 // ACK, 0xab, 0x83
	KbdTypematic   = 0xf3 // b: rate and delay; ACK, ACK
	KbdEnable      = 0xf4 // start scanning; ACK
	KbdDisable     = 0xf5 // stop scanning, restore defaults; ACK
	KbdDefaults    = 0xf6 // restore defaults; ACK
	KbdResend      = 0xfe // send the last byte again
	KbdReset       = 0xff // ACK, then 0xaa (basic assurance test passed)
	KbdAck         = 0xfa
	KbdNak         = 0xfe // "resend": the keyboard did not take a byte
	KbdBATOK       = 0xaa
	KbdID1, KbdID2 = 0xab, 0x83 // an MF2 keyboard
	kbdSet3First   = 0xf7       // 0xf7-0xfd: scan code set 3 key modes; ACK
	kbdSet3Last    = 0xfd
	kbdBreak       = 0xf0 // set 2: the next code is a key's release
	kbdExtended    = 0xe0 // set 1 and 2: the next code is an extended key
)

// Set 2 make codes of the keys CtrlAltDel presses.
const (
	kbdLeftCtrl = 0x14
	kbdLeftAlt  = 0x11
	kbdDelete   = 0x71 // after kbdExtended
)

// ctrlAltDel is Ctrl, Alt and Delete pressed, then released, in scan code
// set 2 (Firecracker's SendCtrlAltDel sends the same three presses, as set
// 2 codes), and ctrlAltDelSet1 the same in set 1, for a guest that chose
// set 1 with translation off.
var (
	ctrlAltDel = []byte{
		kbdLeftCtrl, kbdLeftAlt, kbdExtended, kbdDelete,
		kbdExtended, kbdBreak, kbdDelete, kbdBreak, kbdLeftAlt, kbdBreak, kbdLeftCtrl,
	}
	ctrlAltDelSet1 = []byte{0x1d, 0x38, kbdExtended, 0x53, kbdExtended, 0xd3, 0xb8, 0x9d}
)

// i8042Translate is the controller's set 2 to set 1 translation for the
// codes this keyboard sends; other bytes pass unchanged (bytes from 0x80 up
// do so on a real 8042 too, but for 0x83, the second ID byte).
var i8042Translate = map[byte]byte{
	kbdLeftCtrl: 0x1d,
	kbdLeftAlt:  0x38,
	kbdDelete:   0x53,
	KbdID2:      0x41,
}

// I8042 is the keyboard controller. It is safe for concurrent use.
type I8042 struct {
	mu     sync.Mutex
	reset  func()
	irq    IRQLine // nil: no interrupts
	lineMu sync.Mutex
	// detached says Detach was called: the line is driven no more.
	detached bool
	st       I8042State
}

// I8042State is the guest-visible state of an I8042 and its keyboard.
type I8042State struct {
	Status  byte // status register
	CmdByte byte // controller command byte
	Output  byte // output buffer: the last byte the controller produced
	OutPort byte // output port (reset line, A20)
	// Pending is the command waiting for its argument on the data port, or 0.
	Pending byte

	// The keyboard.
	KbdQueue [I8042QueueSize]byte // bytes not yet in the output buffer, oldest first
	KbdLen   byte                 // how many of KbdQueue are queued
	KbdArg   byte                 // the command waiting for its argument, or 0
	KbdOff   bool                 // scanning disabled (0xf5): keys are not sent
	KbdSet   byte                 // scan code set, 1-3 (0 reads as 2)
	KbdLast  byte                 // the last byte queued, for KbdResend
	// XlateBreak says translation took a set 2 break prefix (0xf0) whose
	// key code has not moved yet.
	XlateBreak bool
}

// NewI8042 returns a controller in its power-on state. irq is its keyboard
// interrupt line (IRQKeyboard), nil for none. reset is called (on the
// vCPU's thread, with no lock held) when the guest pulses the reset line;
// it should ask the VM to reboot or stop, not block.
func NewI8042(irq IRQLine, reset func()) *I8042 {
	return RestoreI8042(I8042State{
		Status:  I8042Unlocked,
		CmdByte: I8042CmdKbdIRQ | I8042CmdTranslate,
		OutPort: I8042OutReset | I8042OutA20,
		KbdSet:  2,
	}, irq, reset)
}

// RestoreI8042 rebuilds a controller from st.
func RestoreI8042(st I8042State, irq IRQLine, reset func()) *I8042 {
	k := &I8042{reset: reset, irq: irq}
	k.Restore(st)
	return k
}

// Restore puts the controller in state st. A queue length past the
// queue's size is cut to it.
func (k *I8042) Restore(st I8042State) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st.KbdLen = min(st.KbdLen, I8042QueueSize)
	k.st = st
}

// State returns the controller's state.
func (k *I8042) State() I8042State {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st
}

// Detach stops the controller from driving its interrupt line, which is
// about to go away.
func (k *I8042) Detach() {
	k.lineMu.Lock()
	defer k.lineMu.Unlock()
	k.detached = true
}

// CtrlAltDel presses and releases Ctrl, Alt and Delete on the keyboard:
// the controller hands the guest their scan codes (translated to set 1
// when translation is on) and interrupts it for each. It fails, typing
// nothing, when the guest has the keyboard's scanning off or in scan code
// set 3, or its queue lacks room for all the codes.
func (k *I8042) CtrlAltDel() error {
	k.mu.Lock()
	codes := ctrlAltDel
	if k.scanSet() == 1 {
		codes = ctrlAltDelSet1
	}
	var err error
	switch {
	case k.st.KbdOff:
		err = errI8042KbdOff
	case k.scanSet() == 3:
		err = errI8042Set3
	case int(k.st.KbdLen)+len(codes) > I8042QueueSize:
		err = errI8042Full
	default:
		for _, b := range codes {
			k.queue(b)
		}
	}
	pulse := k.move()
	k.mu.Unlock()
	k.pulse(pulse)
	return err
}

var (
	errI8042KbdOff = i8042Error("the guest has turned the keyboard's scanning off")
	errI8042Set3   = i8042Error("the guest chose scan code set 3, which the keyboard cannot type Ctrl-Alt-Del in")
	errI8042Full   = i8042Error("the keyboard's queue is full: the guest is not reading it")
)

type i8042Error string

func (e i8042Error) Error() string { return "i8042: " + string(e) }

// Read handles a guest read; only the low byte of a wider read is used.
func (k *I8042) Read(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	clear(p)
	k.mu.Lock()
	var pulse bool
	switch off {
	case I8042DataOffset:
		p[0] = k.st.Output
		k.st.Status &^= I8042OutputFull | I8042AuxData
		pulse = k.move()
	case I8042CommandOffset:
		p[0] = k.st.Status
	default:
		p[0] = 0xff
	}
	k.mu.Unlock()
	k.pulse(pulse)
}

// Write handles a guest write of the low byte of p.
func (k *I8042) Write(off uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	k.mu.Lock()
	var reset, pulse bool
	switch off {
	case I8042DataOffset:
		k.st.Status &^= I8042LastCmd
		reset, pulse = k.data(p[0])
	case I8042CommandOffset:
		k.st.Status |= I8042LastCmd
		reset, pulse = k.command(p[0])
	}
	pulse = k.move() || pulse
	k.mu.Unlock()
	k.pulse(pulse)
	if reset && k.reset != nil {
		k.reset()
	}
}

// pulse pulses the interrupt line if p is set.
func (k *I8042) pulse(p bool) {
	if !p || k.irq == nil {
		return
	}
	k.lineMu.Lock()
	defer k.lineMu.Unlock()
	if k.detached {
		return
	}
	// An edge: a failure leaves nothing to undo, and the guest's next
	// read of the data port (or its driver's timeout) goes on.
	_ = k.irq.SetLevel(true)
	_ = k.irq.SetLevel(false)
}

// output puts v in the output buffer and reports whether that interrupts.
func (k *I8042) output(v byte) bool {
	k.st.Output = v
	k.st.Status = k.st.Status&^I8042AuxData | I8042OutputFull
	return k.st.CmdByte&I8042CmdKbdIRQ != 0
}

// move moves the keyboard's next byte to the output buffer if the buffer
// is empty and the keyboard port enabled, translating it to set 1 when
// translation is on, and reports whether that interrupts.
func (k *I8042) move() bool {
	for k.st.Status&I8042OutputFull == 0 && k.st.CmdByte&I8042CmdKbdDisable == 0 && k.st.KbdLen > 0 {
		b := k.st.KbdQueue[0]
		copy(k.st.KbdQueue[:], k.st.KbdQueue[1:k.st.KbdLen])
		k.st.KbdLen--
		k.st.KbdQueue[k.st.KbdLen] = 0
		if k.st.CmdByte&I8042CmdTranslate != 0 {
			if b == kbdBreak {
				k.st.XlateBreak = true
				continue
			}
			if t, ok := i8042Translate[b]; ok {
				b = t
			}
			if k.st.XlateBreak {
				b |= 0x80
				k.st.XlateBreak = false
			}
		}
		return k.output(b)
	}
	return false
}

// queue adds b to the keyboard's queue, dropping it if the queue is full.
func (k *I8042) queue(b byte) {
	if k.st.KbdLen < I8042QueueSize {
		k.st.KbdQueue[k.st.KbdLen] = b
		k.st.KbdLen++
		k.st.KbdLast = b
	}
}

// command runs a controller command and reports whether it resets the CPU
// and whether it interrupts.
func (k *I8042) command(c byte) (reset, irq bool) {
	k.st.Pending = 0
	switch c {
	case I8042ReadCmdByte:
		irq = k.output(k.st.CmdByte)
	case I8042WriteCmdByte, I8042WriteOutPort, I8042WriteKbdOutput, I8042WriteAuxOutput, I8042WriteAux:
		k.st.Pending = c
	case I8042DisableAux:
		k.st.CmdByte |= I8042CmdAuxDisable
	case I8042EnableAux:
		k.st.CmdByte &^= I8042CmdAuxDisable
	case I8042SelfTest:
		k.st.Status |= I8042System
		irq = k.output(i8042SelfTestOK)
	case I8042KbdTest:
		irq = k.output(0)
	case I8042DisableKbd:
		k.st.CmdByte |= I8042CmdKbdDisable
	case I8042EnableKbd:
		k.st.CmdByte &^= I8042CmdKbdDisable
	case I8042ReadOutPort:
		irq = k.output(k.st.OutPort)
	default:
		return c >= i8042PulseFirst && c&I8042OutReset == 0, false
	}
	return false, irq
}

// data takes a byte written to the data port and reports whether it resets
// the CPU and whether it interrupts.
func (k *I8042) data(v byte) (reset, irq bool) {
	cmd := k.st.Pending
	k.st.Pending = 0
	switch cmd {
	case I8042WriteCmdByte:
		k.st.CmdByte = v
		k.st.Status = k.st.Status&^I8042System | v&I8042CmdSystem
	case I8042WriteOutPort:
		k.st.OutPort = v
		return v&I8042OutReset == 0, false
	case I8042WriteKbdOutput:
		return false, k.output(v)
	case I8042WriteAuxOutput, I8042WriteAux:
		// No mouse.
	default:
		k.keyboard(v)
	}
	return false, false
}

// keyboard takes a byte sent to the keyboard: a command, or the argument
// of the last one. The keyboard drops what it had not yet sent and
// queues its answer.
func (k *I8042) keyboard(v byte) {
	if arg := k.st.KbdArg; arg != 0 {
		k.st.KbdArg = 0
		if arg == KbdScanSet && v == 0 {
			k.flush()
			k.queue(KbdAck)
			k.queue(k.scanSet())
			return
		}
		if arg == KbdScanSet && v <= 3 {
			k.st.KbdSet = v
		}
		if arg != KbdScanSet || v <= 3 {
			k.flush()
			k.queue(KbdAck)
			return
		}
		// Not an argument: a command, as a keyboard takes it.
	}
	if v == KbdResend {
		last := k.st.KbdLast
		k.flush()
		k.queue(last)
		return
	}
	k.flush()
	switch {
	case v == KbdSetLEDs, v == KbdScanSet, v == KbdTypematic:
		k.st.KbdArg = v
		k.queue(KbdAck)
	case v == KbdEcho:
		k.queue(KbdEcho)
	case v == KbdGetID:
		k.queue(KbdAck)
		k.queue(KbdID1)
		k.queue(KbdID2)
	case v == KbdEnable:
		k.st.KbdOff = false
		k.queue(KbdAck)
	case v == KbdDisable:
		k.st.KbdOff = true
		k.st.KbdSet = 2
		k.queue(KbdAck)
	case v == KbdDefaults:
		k.st.KbdSet = 2
		k.queue(KbdAck)
	case v == KbdReset:
		k.st.KbdOff = false
		k.st.KbdSet = 2
		k.queue(KbdAck)
		k.queue(KbdBATOK)
	case v >= kbdSet3First && v <= kbdSet3Last:
		k.queue(KbdAck)
	default:
		k.queue(KbdNak)
	}
}

// flush drops the bytes the keyboard had not yet sent.
func (k *I8042) flush() {
	k.st.KbdQueue = [I8042QueueSize]byte{}
	k.st.KbdLen = 0
	k.st.XlateBreak = false
}

// scanSet is the keyboard's scan code set, as it reports it.
func (k *I8042) scanSet() byte {
	if k.st.KbdSet == 0 {
		return 2
	}
	return k.st.KbdSet
}
