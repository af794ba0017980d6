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
		{"keyboard byte ignored", []access{cmd(I8042SelfTest), data(0xff), readData(0x55), readStatus(I8042Unlocked | I8042System)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resets := 0
			k := NewI8042(func() { resets++ })
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
			k := NewI8042(func() { resets++ })
			for _, w := range tt.writes {
				regWrite(k, uint64(w[0]), w[1])
			}
			if resets != tt.want {
				t.Errorf("reset calls = %d, want %d", resets, tt.want)
			}
		})
	}
	// A nil reset func is allowed.
	regWrite(NewI8042(nil), I8042CommandOffset, I8042PulseReset)
}

func TestI8042Offset(t *testing.T) {
	k := NewI8042(nil)
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
	k := NewI8042(nil)
	regWrite(k, I8042CommandOffset, I8042SelfTest)
	regWrite(k, I8042CommandOffset, I8042WriteCmdByte) // argument still pending
	want := k.State()
	r := RestoreI8042(want, nil)
	if got := r.State(); got != want {
		t.Fatalf("RestoreI8042(s).State() = %+v, want %+v", got, want)
	}
	regWrite(r, I8042DataOffset, 0x47)
	if got := r.State().CmdByte; got != 0x47 {
		t.Errorf("command byte after restored pending write = %#02x, want 0x47", got)
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
}

func newI8042Model() *i8042Model {
	return &i8042Model{cmdByte: I8042CmdKbdIRQ | I8042CmdTranslate, outPort: I8042OutReset | I8042OutA20}
}

func (m *i8042Model) output(v byte) { m.out, m.queued = v, true }

// command applies a command write and reports whether it pulses the reset
// line: a pulse command (0xf0-0xff) pulses the output-port lines whose
// bits are 0, and line 0 is the reset.
func (m *i8042Model) command(c byte) (reset bool) {
	m.lastCmd = true
	m.pending = 0
	switch c {
	case I8042ReadCmdByte:
		m.output(m.cmdByte)
	case I8042WriteCmdByte, I8042WriteOutPort, I8042WriteKbdOutput:
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
	}
	return false // no keyboard: a byte for it goes nowhere
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

// FuzzI8042 drives the controller with any register accesses, in pairs of
// bytes (op, value), and holds it to the data sheet after each one: the
// status register's output-buffer-full bit says whether a byte is queued,
// a data read returns the last byte produced and empties the buffer, SYS
// and A2 follow the self-test, the command byte and the last port written,
// the command byte round-trips through 0x60 and 0x20 (with 0xa7/0xa8 and
// 0xad/0xae setting and clearing its bits 5 and 4), the reset line fires
// exactly on a pulse command with bit 0 low (0xfe) or an output-port write
// with bit 0 low, and other offsets read 0xff and change nothing. One op
// replaces the controller by RestoreI8042 of its State, which must not
// change anything the guest sees.
func FuzzI8042(f *testing.F) {
	const (
		opData = iota
		opCommand
		opReadData
		opReadStatus
		opOther // the value's bit 0 says write; op>>3 picks the offset
		opRestore
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
	f.Fuzz(func(t *testing.T, ops []byte) {
		resets := 0
		onReset := func() { resets++ }
		k := NewI8042(onReset)
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
			case opCommand:
				regWrite(k, I8042CommandOffset, v)
				if m.command(v) {
					wantResets++
				}
			case opReadData:
				if got := regRead(k, I8042DataOffset); got != m.out {
					t.Fatalf("op %d: Read(data) = %#02x, want %#02x, the last byte produced", i/2, got, m.out)
				}
				m.queued = false
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
				k = RestoreI8042(k.State(), onReset)
			}
			if got := resets - before; got != wantResets {
				t.Fatalf("op %d (%d, %#02x): reset fired %d times, want %d", i/2, op%opKinds, v, got, wantResets)
			}
			if got, want := k.State().Status, m.status(); got != want {
				t.Fatalf("op %d (%d, %#02x): status %#08b, want %#08b", i/2, op%opKinds, v, got, want)
			}
			if got := k.State().CmdByte; got != m.cmdByte {
				t.Fatalf("op %d (%d, %#02x): command byte %#02x, want %#02x", i/2, op%opKinds, v, got, m.cmdByte)
			}
		}
	})
}
