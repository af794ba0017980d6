package devices

import "testing"

func TestI8042Commands(t *testing.T) {
	type access struct {
		write bool
		off   uint64
		v     byte // written, or wanted from a read
	}
	cmd := func(c byte) access { return access{true, I8042CommandOffset, c} }
	data := func(v byte) access { return access{true, I8042DataOffset, v} }
	readData := func(want byte) access { return access{false, I8042DataOffset, want} }
	readStatus := func(want byte) access { return access{false, I8042CommandOffset, want} }
	tests := []struct {
		name  string
		steps []access
	}{
		{"power-on status", []access{readStatus(I8042Unlocked)}},
		{"self-test", []access{
			cmd(I8042SelfTest),
			readStatus(I8042Unlocked | I8042LastCmd | I8042System | I8042OutputFull),
			readData(0x55),
			readStatus(I8042Unlocked | I8042LastCmd | I8042System),
			readData(0x55), // the last output stays readable
		}},
		{"read command byte", []access{cmd(I8042ReadCmdByte), readData(I8042CmdKbdIRQ | I8042CmdTranslate)}},
		{"write command byte", []access{
			cmd(I8042WriteCmdByte), data(I8042CmdSystem | I8042CmdAuxDisable),
			readStatus(I8042Unlocked | I8042System),
			cmd(I8042ReadCmdByte), readData(I8042CmdSystem | I8042CmdAuxDisable),
		}},
		{"disable and enable keyboard", []access{
			cmd(I8042DisableKbd), cmd(I8042ReadCmdByte), readData(I8042CmdKbdIRQ | I8042CmdTranslate | I8042CmdKbdDisable),
			cmd(I8042EnableKbd), cmd(I8042ReadCmdByte), readData(I8042CmdKbdIRQ | I8042CmdTranslate),
		}},
		{"disable and enable mouse", []access{
			cmd(I8042DisableAux), cmd(I8042ReadCmdByte), readData(I8042CmdKbdIRQ | I8042CmdTranslate | I8042CmdAuxDisable),
			cmd(I8042EnableAux), cmd(I8042ReadCmdByte), readData(I8042CmdKbdIRQ | I8042CmdTranslate),
		}},
		{"keyboard test", []access{cmd(I8042SelfTest), cmd(I8042KbdTest), readData(0)}},
		{"read output port", []access{cmd(I8042ReadOutPort), readData(I8042OutReset | I8042OutA20)}},
		{"write keyboard output", []access{cmd(I8042WriteKbdOutput), data(0xfa), readData(0xfa)}},
		{"keyboard answers after the controller's byte", []access{
			cmd(I8042SelfTest), data(KbdReset),
			readData(0x55), readStatus(I8042Unlocked | I8042System | I8042OutputFull),
			readData(KbdAck), readData(KbdBATOK), readStatus(I8042Unlocked | I8042System),
		}},
		{"no mouse: its bytes are dropped", []access{
			cmd(I8042WriteAuxOutput), data(0x5a), readStatus(I8042Unlocked),
			cmd(I8042WriteAux), data(0xff), readStatus(I8042Unlocked),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resets := 0
			k := NewI8042(nil, func() { resets++ })
			for i, s := range tt.steps {
				if s.write {
					regWrite(k, s.off, s.v)
					continue
				}
				if got := regRead(k, s.off); got != s.v {
					t.Errorf("step %d: Read(%d) = %#02x, want %#02x", i, s.off, got, s.v)
				}
			}
			if resets != 0 {
				t.Errorf("reset called %d times, want 0", resets)
			}
		})
	}
}

func TestI8042Reset(t *testing.T) {
	tests := []struct {
		name   string
		writes [][2]byte // {offset, value}
		want   int
	}{
		{"pulse 0xfe", [][2]byte{{I8042CommandOffset, I8042PulseReset}}, 1},
		{"pulse 0xf0", [][2]byte{{I8042CommandOffset, 0xf0}}, 1},
		{"pulse 0xff pulses nothing", [][2]byte{{I8042CommandOffset, 0xff}}, 0},
		{"output port reset low", [][2]byte{{I8042CommandOffset, I8042WriteOutPort}, {I8042DataOffset, I8042OutA20}}, 1},
		{"output port reset high", [][2]byte{{I8042CommandOffset, I8042WriteOutPort}, {I8042DataOffset, I8042OutReset}}, 0},
		{"0xfe as data", [][2]byte{{I8042DataOffset, I8042PulseReset}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resets := 0
			k := NewI8042(nil, func() { resets++ })
			for _, w := range tt.writes {
				regWrite(k, uint64(w[0]), w[1])
			}
			if resets != tt.want {
				t.Errorf("reset calls = %d, want %d", resets, tt.want)
			}
		})
	}
	// A nil reset func is allowed.
	regWrite(NewI8042(nil, nil), I8042CommandOffset, I8042PulseReset)
}

func TestI8042Offset(t *testing.T) {
	k := NewI8042(nil, nil)
	b := NewBus(PortIO)
	if err := b.Register(PortI8042Data, 1, "i8042", k); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(PortI8042Command, 1, "i8042", Offset(k, I8042CommandOffset)); err != nil {
		t.Fatal(err)
	}
	b.Write(PortI8042Command, []byte{I8042SelfTest})
	p := []byte{0}
	b.Read(PortI8042Data, p)
	if p[0] != 0x55 {
		t.Errorf("Read(port 0x60) after self-test = %#02x, want 0x55", p[0])
	}
}

func TestI8042StateRoundTrip(t *testing.T) {
	k := NewI8042(nil, nil)
	regWrite(k, I8042CommandOffset, I8042SelfTest)
	regWrite(k, I8042CommandOffset, I8042WriteCmdByte) // argument still pending
	want := k.State()
	r := RestoreI8042(want, nil, nil)
	if got := r.State(); got != want {
		t.Fatalf("RestoreI8042(s).State() = %+v, want %+v", got, want)
	}
	regWrite(r, I8042DataOffset, 0x47)
	if got := r.State().CmdByte; got != 0x47 {
		t.Errorf("command byte after restored pending write = %#02x, want 0x47", got)
	}
}

// kbdStep is a device access for the keyboard tests: a write, or a read
// of the data port that must give want.
type kbdStep struct {
	write bool
	off   uint64
	v     byte
}

func kcmd(c byte) kbdStep     { return kbdStep{true, I8042CommandOffset, c} }
func kdata(v byte) kbdStep    { return kbdStep{true, I8042DataOffset, v} }
func kread(want byte) kbdStep { return kbdStep{false, I8042DataOffset, want} }
func kreads(want ...byte) []kbdStep {
	var s []kbdStep
	for _, w := range want {
		s = append(s, kread(w))
	}
	return s
}

// kbdLine counts the pulses a device makes on its line.
type kbdLine struct {
	high   bool
	pulses int
	stuck  bool // SetLevel(true) twice in a row
}

func (c *kbdLine) SetLevel(high bool) error {
	if high && c.high {
		c.stuck = true
	}
	if !high && c.high {
		c.pulses++
	}
	c.high = high
	return nil
}

// runKbd runs steps as a Linux driver would, reading only when the
// status register says a byte is there, and checks that no byte is left
// and the line is low.
func runKbd(t *testing.T, k *I8042, irq *kbdLine, steps []kbdStep) {
	t.Helper()
	for i, s := range steps {
		if s.write {
			regWrite(k, s.off, s.v)
			continue
		}
		if st := regRead(k, I8042CommandOffset); st&I8042OutputFull == 0 {
			t.Fatalf("step %d: status %#02x: no byte to read, want %#02x", i, st, s.v)
		}
		if got := regRead(k, I8042DataOffset); got != s.v {
			t.Fatalf("step %d: Read(data) = %#02x, want %#02x", i, got, s.v)
		}
	}
	if st := regRead(k, I8042CommandOffset); st&I8042OutputFull != 0 {
		t.Errorf("after the steps, a byte is left: status %#02x, data %#02x", st, regRead(k, I8042DataOffset))
	}
	if irq.stuck || irq.high {
		t.Errorf("the interrupt line was left high or raised twice")
	}
}

// TestI8042LinuxProbe replays what Linux's i8042 and atkbd drivers send
// on a PC (drivers/input/serio/i8042.c, drivers/input/keyboard/atkbd.c):
// the controller's self-test, the command byte read twice and written
// back with the keyboard port disabled and its interrupt off, then
// enabled with it on; atkbd's ID, the keyboard disabled during setup, the
// LEDs and typematic rate set, and scanning enabled; then Ctrl-Alt-Del.
func TestI8042LinuxProbe(t *testing.T) {
	const ctr = I8042CmdKbdIRQ | I8042CmdSystem | I8042CmdTranslate
	for _, tt := range []struct {
		name      string
		translate bool
		id2       byte
		keys      []byte
	}{
		{"translated", true, 0x41, []byte{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}},
		{"set 2", false, KbdID2, ctrlAltDel},
	} {
		t.Run(tt.name, func(t *testing.T) {
			irq := &kbdLine{}
			k := NewI8042(irq, nil)
			run := func(steps ...kbdStep) { t.Helper(); runKbd(t, k, irq, steps) }
			cb := byte(ctr)
			if !tt.translate {
				cb &^= I8042CmdTranslate
			}
			run(kcmd(I8042SelfTest), kread(0x55))
			run(kcmd(I8042ReadCmdByte), kread(I8042CmdKbdIRQ|I8042CmdTranslate), kcmd(I8042ReadCmdByte), kread(I8042CmdKbdIRQ|I8042CmdTranslate))
			run(kcmd(I8042WriteCmdByte), kdata(cb&^I8042CmdKbdIRQ|I8042CmdKbdDisable|I8042CmdAuxDisable))
			// The mouse port check: the loop-back byte goes nowhere.
			run(kcmd(I8042WriteAuxOutput), kdata(0x5a))
			before := irq.pulses
			run(kcmd(I8042WriteCmdByte), kdata(cb|I8042CmdAuxDisable))
			if irq.pulses != before {
				t.Errorf("writing the command byte pulsed IRQ 1")
			}
			// atkbd_probe and atkbd_connect; each answer interrupts.
			before = irq.pulses
			run(kdata(KbdGetID), kread(KbdAck), kread(KbdID1), kread(tt.id2))
			run(kdata(KbdDisable), kread(KbdAck))
			run(kdata(KbdReset), kread(KbdAck), kread(KbdBATOK))
			run(kdata(KbdScanSet), kread(KbdAck), kdata(2), kread(KbdAck))
			run(kdata(KbdScanSet), kread(KbdAck), kdata(0), kread(KbdAck), kread(2))
			run(kdata(KbdSetLEDs), kread(KbdAck), kdata(0), kread(KbdAck))
			run(kdata(KbdTypematic), kread(KbdAck), kdata(0), kread(KbdAck))
			run(kdata(KbdEnable), kread(KbdAck))
			run(kdata(KbdEcho), kread(KbdEcho))
			if want := 17; irq.pulses-before != want {
				t.Errorf("IRQ 1 pulsed %d times for the keyboard's bytes, want %d", irq.pulses-before, want)
			}
			before = irq.pulses
			if err := k.CtrlAltDel(); err != nil {
				t.Fatalf("CtrlAltDel: %v", err)
			}
			run(kreads(tt.keys...)...)
			if irq.pulses-before != len(tt.keys) {
				t.Errorf("IRQ 1 pulsed %d times for %d scan codes", irq.pulses-before, len(tt.keys))
			}
		})
	}
}

func TestI8042Keyboard(t *testing.T) {
	tests := []struct {
		name  string
		steps []kbdStep
	}{
		{"unknown command: resend", []kbdStep{kdata(0x12), kread(KbdNak)}},
		{"resend repeats the last byte", []kbdStep{kdata(KbdEcho), kread(KbdEcho), kdata(KbdResend), kread(KbdEcho)}},
		{"scan set 3 and back", []kbdStep{kdata(KbdScanSet), kread(KbdAck), kdata(3), kread(KbdAck),
			kdata(KbdScanSet), kread(KbdAck), kdata(0), kread(KbdAck), kread(3),
			kdata(KbdDefaults), kread(KbdAck), kdata(KbdScanSet), kread(KbdAck), kdata(0), kread(KbdAck), kread(2)}},
		{"a command in place of an argument", []kbdStep{kdata(KbdScanSet), kread(KbdAck), kdata(KbdEcho), kread(KbdEcho)}},
		{"set 3 key modes", []kbdStep{kdata(0xf8), kread(KbdAck)}},
		{"a new command drops the answer not yet in the controller", []kbdStep{kdata(KbdGetID), kread(KbdAck), kdata(KbdEcho), kread(KbdID1), kread(KbdEcho)}},
		{"keyboard port disabled holds bytes", []kbdStep{kcmd(I8042DisableKbd), kdata(KbdEcho), kcmd(I8042EnableKbd), kread(KbdEcho)}},
		{"controller command byte while keyboard bytes wait", []kbdStep{kcmd(I8042DisableKbd), kdata(KbdGetID),
			kcmd(I8042ReadCmdByte), kread(I8042CmdKbdIRQ | I8042CmdTranslate | I8042CmdKbdDisable),
			kcmd(I8042EnableKbd), kread(KbdAck), kread(KbdID1), kread(0x41)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			irq := &kbdLine{}
			runKbd(t, NewI8042(irq, nil), irq, tt.steps)
		})
	}
}

func TestI8042CtrlAltDel(t *testing.T) {
	t.Run("no interrupt when the command byte says so", func(t *testing.T) {
		irq := &kbdLine{}
		k := NewI8042(irq, nil)
		runKbd(t, k, irq, []kbdStep{kcmd(I8042WriteCmdByte), kdata(I8042CmdTranslate)})
		if err := k.CtrlAltDel(); err != nil {
			t.Fatal(err)
		}
		runKbd(t, k, irq, kreads(0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d))
		if irq.pulses != 0 {
			t.Errorf("IRQ 1 pulsed %d times with the command byte's bit 0 clear", irq.pulses)
		}
	})
	t.Run("set 1 untranslated", func(t *testing.T) {
		irq := &kbdLine{}
		k := NewI8042(irq, nil)
		runKbd(t, k, irq, []kbdStep{kcmd(I8042WriteCmdByte), kdata(I8042CmdKbdIRQ), kdata(KbdScanSet), kread(KbdAck), kdata(1), kread(KbdAck)})
		if err := k.CtrlAltDel(); err != nil {
			t.Fatal(err)
		}
		runKbd(t, k, irq, kreads(ctrlAltDelSet1...))
	})
	t.Run("refused", func(t *testing.T) {
		irq := &kbdLine{}
		k := NewI8042(irq, nil)
		runKbd(t, k, irq, []kbdStep{kdata(KbdDisable), kread(KbdAck)})
		if err := k.CtrlAltDel(); err == nil {
			t.Errorf("CtrlAltDel with scanning off = nil, want an error")
		}
		runKbd(t, k, irq, []kbdStep{kdata(KbdEnable), kread(KbdAck), kdata(KbdScanSet), kread(KbdAck), kdata(3), kread(KbdAck)})
		if err := k.CtrlAltDel(); err == nil {
			t.Errorf("CtrlAltDel in set 3 = nil, want an error")
		}
		runKbd(t, k, irq, []kbdStep{kdata(KbdScanSet), kread(KbdAck), kdata(2), kread(KbdAck)})
		if err := k.CtrlAltDel(); err != nil {
			t.Fatal(err)
		}
		if err := k.CtrlAltDel(); err == nil {
			t.Errorf("a second CtrlAltDel with the first unread = nil, want an error (the queue is full)")
		}
		if got := k.State().KbdLen; got != byte(len(ctrlAltDel)-1) {
			t.Errorf("queue holds %d bytes, want %d: one is in the output buffer", got, len(ctrlAltDel)-1)
		}
	})
	t.Run("detached", func(t *testing.T) {
		irq := &kbdLine{}
		k := NewI8042(irq, nil)
		k.Detach()
		if err := k.CtrlAltDel(); err != nil {
			t.Fatal(err)
		}
		if irq.pulses != 0 {
			t.Errorf("a detached controller pulsed IRQ 1")
		}
	})
	t.Run("survives a snapshot", func(t *testing.T) {
		irq := &kbdLine{}
		k := NewI8042(irq, nil)
		if err := k.CtrlAltDel(); err != nil {
			t.Fatal(err)
		}
		regRead(k, I8042DataOffset)
		regRead(k, I8042DataOffset)
		regRead(k, I8042DataOffset) // 0xe0; next is 0x71
		regRead(k, I8042DataOffset)
		regRead(k, I8042DataOffset) // 0xe0; then the F0 break prefix
		r := RestoreI8042(k.State(), irq, nil)
		runKbd(t, r, irq, kreads(0xd3, 0xb8, 0x9d))
	})
}

func TestI8042RestoreClampsQueue(t *testing.T) {
	k := RestoreI8042(I8042State{KbdLen: 200}, nil, nil)
	if got := k.State().KbdLen; got != I8042QueueSize {
		t.Errorf("KbdLen after restoring 200 = %d, want %d", got, I8042QueueSize)
	}
}

// i8042Model is the controller as the package comment and the 8042's data
// sheet describe it, kept apart from the device so FuzzI8042 can hold the
// device to it.
type i8042Model struct {
	queued  bool // a byte waits in the output buffer (OBF)
	out     byte // the byte a data read returns
	cmdByte byte
	outPort byte
	system  bool // SYS: set by the self-test, and by the command byte's bit 2
	lastCmd bool // A2: the last write went to the command port
	pending byte // the command whose argument the next data write is
	pulses  int  // interrupts expected

	// The keyboard: what it has yet to send, as the guest will read it
	// (translation applied when the byte moves, so kept untranslated).
	kbd    []byte
	kbdArg byte
	kbdOff bool
	set    byte
	last   byte
	brk    bool // translation holds a break prefix
}

func newI8042Model() *i8042Model {
	return &i8042Model{cmdByte: I8042CmdKbdIRQ | I8042CmdTranslate, outPort: I8042OutReset | I8042OutA20, set: 2}
}

func (m *i8042Model) output(v byte) {
	m.out, m.queued = v, true
	if m.cmdByte&I8042CmdKbdIRQ != 0 {
		m.pulses++
	}
}

// move is the controller taking the keyboard's next byte into an empty
// output buffer, with the 8042's set 2 to set 1 translation.
func (m *i8042Model) move() {
	for !m.queued && m.cmdByte&I8042CmdKbdDisable == 0 && len(m.kbd) > 0 {
		b := m.kbd[0]
		m.kbd = m.kbd[1:]
		if m.cmdByte&I8042CmdTranslate != 0 {
			if b == 0xf0 {
				m.brk = true
				continue
			}
			if t, ok := map[byte]byte{0x14: 0x1d, 0x11: 0x38, 0x71: 0x53, 0x83: 0x41}[b]; ok {
				b = t
			}
			if m.brk {
				b |= 0x80
				m.brk = false
			}
		}
		m.output(b)
	}
}

func (m *i8042Model) send(bs ...byte) {
	m.kbd, m.brk = append([]byte(nil), bs...), false
	if len(bs) > 0 {
		m.last = bs[len(bs)-1]
	}
}

// keyboard is the keyboard taking byte v.
func (m *i8042Model) keyboard(v byte) {
	if a := m.kbdArg; a != 0 {
		m.kbdArg = 0
		switch {
		case a == 0xf0 && v == 0:
			m.send(0xfa, m.set)
			return
		case a == 0xf0 && v <= 3:
			m.set = v
			m.send(0xfa)
			return
		case a != 0xf0:
			m.send(0xfa)
			return
		}
	}
	switch {
	case v == 0xfe:
		m.send(m.last)
	case v == 0xed || v == 0xf0 || v == 0xf3:
		m.kbdArg = v
		m.send(0xfa)
	case v == 0xee:
		m.send(0xee)
	case v == 0xf2:
		m.send(0xfa, 0xab, 0x83)
	case v == 0xf4:
		m.kbdOff = false
		m.send(0xfa)
	case v == 0xf5, v == 0xf6:
		m.kbdOff = m.kbdOff || v == 0xf5
		m.set = 2
		m.send(0xfa)
	case v == 0xff:
		m.kbdOff, m.set = false, 2
		m.send(0xfa, 0xaa)
	case v >= 0xf7 && v <= 0xfd:
		m.send(0xfa)
	default:
		m.send(0xfe)
	}
}

// keys is the host typing Ctrl-Alt-Del; it reports whether the keys go.
func (m *i8042Model) keys() bool {
	codes := []byte{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14}
	if m.set == 1 {
		codes = []byte{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}
	}
	if m.kbdOff || m.set == 3 || len(m.kbd)+len(codes) > I8042QueueSize {
		return false
	}
	m.kbd = append(m.kbd, codes...)
	m.last = codes[len(codes)-1]
	return true
}

// command applies a command write and reports whether it pulses the reset
// line: a pulse command (0xf0-0xff) pulses the output-port lines whose
// bits are 0, and line 0 is the reset.
func (m *i8042Model) command(c byte) (reset bool) {
	m.lastCmd = true
	m.pending = 0
	switch c {
	case I8042ReadCmdByte:
		m.output(m.cmdByte)
	case I8042WriteCmdByte, I8042WriteOutPort, I8042WriteKbdOutput, 0xd3, 0xd4:
		m.pending = c
	case I8042DisableAux:
		m.cmdByte |= I8042CmdAuxDisable
	case I8042EnableAux:
		m.cmdByte &^= I8042CmdAuxDisable
	case I8042SelfTest:
		m.system = true
		m.output(0x55)
	case I8042KbdTest:
		m.output(0x00)
	case I8042DisableKbd:
		m.cmdByte |= I8042CmdKbdDisable
	case I8042EnableKbd:
		m.cmdByte &^= I8042CmdKbdDisable
	case I8042ReadOutPort:
		m.output(m.outPort)
	}
	return c >= 0xf0 && c&1 == 0
}

// data applies a data write and reports whether it resets the CPU: an
// output-port write with the reset line (bit 0) low.
func (m *i8042Model) data(v byte) (reset bool) {
	m.lastCmd = false
	cmd := m.pending
	m.pending = 0
	switch cmd {
	case I8042WriteCmdByte:
		m.cmdByte = v
		m.system = v&I8042CmdSystem != 0
	case I8042WriteOutPort:
		m.outPort = v
		return v&I8042OutReset == 0
	case I8042WriteKbdOutput:
		m.output(v)
	case 0xd3, 0xd4:
		// no mouse
	default:
		m.keyboard(v)
	}
	return false
}

// status is the status register the model expects.
func (m *i8042Model) status() byte {
	s := byte(I8042Unlocked) // never inhibited; no IBF, mouse, timeout or parity
	if m.queued {
		s |= I8042OutputFull
	}
	if m.system {
		s |= I8042System
	}
	if m.lastCmd {
		s |= I8042LastCmd
	}
	return s
}

// FuzzI8042 drives the controller and its keyboard with any register
// accesses and Ctrl-Alt-Del presses, in pairs of bytes (op, value), and
// holds it to the data sheet after each one: the status register's
// output-buffer-full bit says whether a byte is queued, a data read
// returns the last byte produced and empties the buffer (letting the
// keyboard's next byte in, translated to set 1 when the command byte's bit
// 6 says so), SYS and A2 follow the self-test, the command byte and the
// last port written, the command byte round-trips through 0x60 and 0x20
// (with 0xa7/0xa8 and 0xad/0xae setting and clearing its bits 5 and 4),
// the reset line fires exactly on a pulse command with bit 0 low (0xfe) or
// an output-port write with bit 0 low, a byte written with no command
// waiting reaches the keyboard, which answers as a PS/2 keyboard does,
// IRQ 1 pulses exactly when a byte enters the output buffer with the
// command byte's bit 0 set, the keyboard never holds more than
// I8042QueueSize bytes, and other offsets read 0xff and change nothing.
// One op replaces the controller by RestoreI8042 of its State, which must
// not change anything the guest sees.
func FuzzI8042(f *testing.F) {
	const (
		opData = iota
		opCommand
		opReadData
		opReadStatus
		opOther // the value's bit 0 says write; op>>3 picks the offset
		opRestore
		opKeys
		opKinds
	)
	seed := func(ops ...byte) { f.Add(ops) }
	seed(opCommand, I8042SelfTest, opReadStatus, 0, opReadData, 0, opReadData, 0, opReadStatus, 0)
	seed(opCommand, I8042WriteCmdByte, opData, 0x45, opCommand, I8042ReadCmdByte, opReadStatus, 0, opReadData, 0)
	seed(opCommand, I8042WriteCmdByte, opCommand, I8042ReadCmdByte, opData, 0x45, opReadData, 0)
	seed(opCommand, I8042DisableKbd, opCommand, I8042DisableAux, opRestore, 0, opCommand, I8042ReadCmdByte, opReadData, 0,
		opCommand, I8042EnableAux, opCommand, I8042EnableKbd, opCommand, I8042ReadCmdByte, opReadData, 0)
	seed(opCommand, I8042WriteOutPort, opData, I8042OutA20, opCommand, I8042ReadOutPort, opReadData, 0)
	seed(opCommand, I8042WriteKbdOutput, opData, 0xfa, opRestore, 0, opReadStatus, 0, opReadData, 0)
	seed(opCommand, I8042PulseReset, opCommand, 0xf1, opCommand, 0xfc, opData, I8042PulseReset)
	seed(opOther|3<<3, 1, opOther|1<<3, 0, opCommand, I8042KbdTest, opReadData, 0)
	seed(opCommand, I8042SelfTest, opCommand, I8042WriteCmdByte, opData, 0, opReadStatus, 0)    // SYS follows bit 2 down
	seed(opCommand, I8042WriteCmdByte, opRestore, 0, opData, 0x04, opCommand, I8042ReadCmdByte) // a pending argument survives restore
	// The keyboard: reset, ID, scan set, LEDs, keys, translated or not.
	seed(opData, KbdReset, opReadData, 0, opReadData, 0, opData, KbdGetID, opReadData, 0, opRestore, 0, opReadData, 0, opReadData, 0)
	seed(opData, KbdScanSet, opReadData, 0, opData, 0, opReadData, 0, opReadData, 0, opData, KbdSetLEDs, opData, 7, opReadData, 0)
	seed(opKeys, 0, opReadData, 0, opReadData, 0, opReadData, 0, opReadData, 0, opReadData, 0, opRestore, 0, opReadData, 0, opReadData, 0, opReadData, 0)
	seed(opCommand, I8042WriteCmdByte, opData, I8042CmdKbdIRQ, opKeys, 0, opKeys, 0, opReadData, 0, opReadData, 0, opReadData, 0, opReadData, 0, opReadData, 0, opReadData, 0)
	seed(opCommand, I8042DisableKbd, opKeys, 0, opData, KbdEcho, opCommand, I8042EnableKbd, opReadData, 0, opData, KbdDisable, opKeys, 0, opReadData, 0)
	seed(opData, KbdScanSet, opData, 1, opCommand, I8042WriteCmdByte, opData, 1, opReadData, 0, opKeys, 0, opReadData, 0, opData, KbdResend, opReadData, 0)
	f.Fuzz(func(t *testing.T, ops []byte) {
		resets := 0
		onReset := func() { resets++ }
		irq := &kbdLine{}
		k := NewI8042(irq, onReset)
		m := newI8042Model()
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			before, wantResets := resets, 0
			switch op % opKinds {
			case opData:
				regWrite(k, I8042DataOffset, v)
				if m.data(v) {
					wantResets++
				}
				m.move()
			case opCommand:
				regWrite(k, I8042CommandOffset, v)
				if m.command(v) {
					wantResets++
				}
				m.move()
			case opReadData:
				if got := regRead(k, I8042DataOffset); got != m.out {
					t.Fatalf("op %d: Read(data) = %#02x, want %#02x, the last byte produced", i/2, got, m.out)
				}
				m.queued = false
				m.move()
			case opReadStatus:
				if got, want := regRead(k, I8042CommandOffset), m.status(); got != want {
					t.Fatalf("op %d: Read(status) = %#08b, want %#08b (OBF %v, SYS %v, A2 %v)", i/2, got, want, m.queued, m.system, m.lastCmd)
				}
			case opOther:
				off := uint64(op >> 3)
				if off == I8042DataOffset || off == I8042CommandOffset {
					off++
				}
				if v&1 == 1 {
					regWrite(k, off, v)
				} else if got := regRead(k, off); got != 0xff {
					t.Fatalf("op %d: Read(%d) = %#02x, want 0xff (no register)", i/2, off, got)
				}
			case opRestore:
				k = RestoreI8042(k.State(), irq, onReset)
			case opKeys:
				err := k.CtrlAltDel()
				if want := m.keys(); (err == nil) != want {
					t.Fatalf("op %d: CtrlAltDel() = %v, want it to succeed: %v", i/2, err, want)
				}
				m.move()
			}
			if got := resets - before; got != wantResets {
				t.Fatalf("op %d (%d, %#02x): reset fired %d times, want %d", i/2, op%opKinds, v, got, wantResets)
			}
			st := k.State()
			if got, want := st.Status, m.status(); got != want {
				t.Fatalf("op %d (%d, %#02x): status %#08b, want %#08b", i/2, op%opKinds, v, got, want)
			}
			if got := st.CmdByte; got != m.cmdByte {
				t.Fatalf("op %d (%d, %#02x): command byte %#02x, want %#02x", i/2, op%opKinds, v, got, m.cmdByte)
			}
			if got := st.KbdQueue[:st.KbdLen]; string(got) != string(m.kbd) {
				t.Fatalf("op %d (%d, %#02x): keyboard queue % x, want % x", i/2, op%opKinds, v, got, m.kbd)
			}
			if irq.pulses != m.pulses || irq.high || irq.stuck {
				t.Fatalf("op %d (%d, %#02x): IRQ 1 pulsed %d times, want %d (left high %v)", i/2, op%opKinds, v, irq.pulses, m.pulses, irq.high)
			}
		}
	})
}
