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
