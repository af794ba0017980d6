package stepper

import (
	"fmt"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Command
	}{
		{"step", Command{Op: OpStep, N: 1}},
		{"s 10", Command{Op: OpStep, N: 10}},
		{"S 0x10", Command{Op: OpStep, N: 16}},
		{"next", Command{Op: OpNext}},
		{"n", Command{Op: OpNext}},
		{"cont", Command{Op: OpCont}},
		{"c", Command{Op: OpCont}},
		{"regs", Command{Op: OpRegs}},
		{"r", Command{Op: OpRegs}},
		{"mem 0x7c00 16", Command{Op: OpMem, Addr: "0x7c00", Len: 16}},
		{"x rsp", Command{Op: OpMem, Addr: "rsp", Len: 64}},
		{"disas", Command{Op: OpDisas, N: 8}},
		{"d 3", Command{Op: OpDisas, N: 3}},
		{"stats", Command{Op: OpStats}},
		{"t", Command{Op: OpStats}},
		{"quit", Command{Op: OpQuit}},
		{"q", Command{Op: OpQuit}},
		{"help", Command{Op: OpHelp}},
		{"vcpu 1", Command{Op: OpVCPU, N: 1}},
		{"b", Command{Op: OpBreak, Break: BreakList}},
		{"break putc", Command{Op: OpBreak, Break: BreakAddr, Addr: "putc"}},
		{"b addr 0x7c22", Command{Op: OpBreak, Break: BreakAddr, Addr: "0x7c22"}},
		{"b exit io", Command{Op: OpBreak, Break: BreakExit, Reason: kvm.ExitIO}},
		{"b exit KVM_EXIT_HLT", Command{Op: OpBreak, Break: BreakExit, Reason: kvm.ExitHLT}},
		{"b exit kvm_exit_shutdown", Command{Op: OpBreak, Break: BreakExit, Reason: kvm.ExitShutdown}},
		{"b port 0x3f8", Command{Op: OpBreak, Break: BreakPort, Lo: 0x3f8, Hi: 0x3f8}},
		{"b port 0x3f8-0x3ff", Command{Op: OpBreak, Break: BreakPort, Lo: 0x3f8, Hi: 0x3ff}},
		{"b mmio 0xd0000000+0x1000", Command{Op: OpBreak, Break: BreakMMIO, Lo: 0xd0000000, Hi: 0xd0000fff}},
		{"b delete putc", Command{Op: OpBreak, Break: BreakDelete, Addr: "putc"}},
		{"b clear", Command{Op: OpBreak, Break: BreakClear}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.line)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v, want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{"", "empty"},
		{"jump 0x7c00", "unknown command"},
		{"s 0", "positive"},
		{"s many", "positive"},
		{"step 1 2", "0 to 1 arguments"},
		{"regs now", "0 argument"},
		{"mem", "1 to 2 arguments"},
		{"mem 0 5000", "at most 4096"},
		{"b port 0x3ff-0x3f8", "ends before it starts"},
		{"b port 0x10000", "ports end at 0xffff"},
		{"b mmio 0xffffffffffffffff+2", "does not wrap"},
		{"b exit teleport", "exit reason"},
		{"b exit", "one argument"},
		{"b 1 2", "give ADDR"},
		{"vcpu", "1 argument"},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.line); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v, want one containing %q", tt.line, err, tt.want)
		}
	}
}

// TestHelpNamesEveryCommand: the help text lists every command name the
// parser takes, so no command hides.
func TestHelpNamesEveryCommand(t *testing.T) {
	for name, op := range commands {
		if name == "continue" {
			if !strings.Contains(Help, "also: continue") {
				t.Errorf("Help lacks %q", name)
			}
			continue
		}
		if len(name) == 1 {
			if !strings.Contains(Help, "["+name+"]") && name != "?" {
				t.Errorf("Help lacks the abbreviation [%s] of %v", name, op)
			}
			continue
		}
		if !strings.Contains(Help, "  "+name) {
			t.Errorf("Help lacks the command %q", name)
		}
	}
}

func TestSymbols(t *testing.T) {
	s := NewSymbols(map[string]uint64{"start": 0x7c00, "putc": 0x7c22, "alias": 0x7c22, "far": 0x20000})
	tests := []struct {
		addr uint64
		want string
	}{
		{0x7c00, "start"},
		{0x7c05, "start+0x5"},
		{0x7c22, "alias"}, // two names: the first by name
		{0x7c30, "alias+0xe"},
		{0x7bff, ""},
		{0x9000, ""}, // too far from putc
	}
	for _, tt := range tests {
		if got := s.Name(tt.addr); got != tt.want {
			t.Errorf("Name(%#x) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if a, ok := s.Lookup("putc"); !ok || a != 0x7c22 {
		t.Errorf("Lookup(putc) = %#x, %v", a, ok)
	}
	var none *Symbols
	if none.Name(0x7c00) != "" {
		t.Errorf("nil Symbols named an address")
	}
}

func TestChanged(t *testing.T) {
	a, b := &regState{}, &regState{}
	b.regs.RAX, b.regs.RIP, b.sregs.CR0 = 0x48, 0x7c02, 1
	if got, want := fmt.Sprint(changed(a, b)), "[rax=0x48 cr0=0x1]"; got != want {
		t.Errorf("changed() = %s, want %s (RIP left out)", got, want)
	}
	if spaceOf(BreakMMIO) != devices.MMIO || spaceOf(BreakPort) != devices.PortIO {
		t.Errorf("spaceOf mixes up the buses")
	}
}

// FuzzParse: any line parses or is refused, and what parses keeps the
// bounds the stepper relies on.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"s 10", "b port 0x3f8-0x3ff", "b mmio 0xd0000000+0x1000", "x rsp 32", "b exit io", "d", "vcpu 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := Parse(line)
		if err != nil {
			return
		}
		switch c.Op {
		case OpStep, OpDisas:
			if c.N < 1 {
				t.Fatalf("Parse(%q) = %d instructions", line, c.N)
			}
		case OpMem:
			if c.Len < 1 || c.Len > 4096 || c.Addr == "" {
				t.Fatalf("Parse(%q) = mem %q %d", line, c.Addr, c.Len)
			}
		case OpBreak:
			if (c.Break == BreakPort || c.Break == BreakMMIO) && c.Lo > c.Hi {
				t.Fatalf("Parse(%q) = range %#x-%#x", line, c.Lo, c.Hi)
			}
			if c.Break == BreakPort && c.Hi > 0xffff {
				t.Fatalf("Parse(%q) = port %#x", line, c.Hi)
			}
		}
	})
}
