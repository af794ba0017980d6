// Package stepper is `govmm step`: it holds a guest at its first
// instruction and takes commands, from a terminal or a pipe, to walk it
// one instruction or one VM exit at a time and look at the machine at
// each stop. It is built on package debugger. Every stop's report begins
// with a line "rip=0x... <instruction>".
//
//	step [N]      s   run N instructions (1), reporting each stop
//	next          n   run to the next exit to user space
//	cont          c   run until a breakpoint or the end
//	break ...     b   stop at an address, an exit reason, a port or MMIO
//	regs          r   the registers, those changed since the last stop marked
//	mem ADDR LEN  x   memory at a linear address
//	disas [N]     d   disassembly around RIP
//	stats         t   the exits since the last stop, and KVM's own counters
//	vcpu N            work on vCPU N
//	help          h   the commands
//	quit          q   end the VM
//
// An empty line repeats the last command.
package stepper

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// Op is a command.
type Op int

// The commands. The zero value is no command.
const (
	_ Op = iota
	OpStep
	OpNext
	OpCont
	OpBreak
	OpRegs
	OpMem
	OpDisas
	OpStats
	OpVCPU
	OpHelp
	OpQuit
)

// commands maps each name and abbreviation to its Op.
var commands = map[string]Op{
	"step": OpStep, "s": OpStep,
	"next": OpNext, "n": OpNext,
	"cont": OpCont, "c": OpCont, "continue": OpCont,
	"break": OpBreak, "b": OpBreak,
	"regs": OpRegs, "r": OpRegs,
	"mem": OpMem, "x": OpMem,
	"disas": OpDisas, "d": OpDisas,
	"stats": OpStats, "t": OpStats,
	"vcpu": OpVCPU,
	"help": OpHelp, "h": OpHelp, "?": OpHelp,
	"quit": OpQuit, "q": OpQuit,
}

// BreakKind is what a break command stops at.
type BreakKind int

// Kinds of break. The zero value lists the breaks.
const (
	BreakList   BreakKind = iota // break: list them
	BreakAddr                    // break ADDR, break addr ADDR: a guest address
	BreakExit                    // break exit REASON: every exit of a reason
	BreakPort                    // break port P[-Q]: port accesses
	BreakMMIO                    // break mmio A[-B] or A+LEN: MMIO accesses
	BreakDelete                  // break delete ADDR
	BreakClear                   // break clear: remove them all
)

// Command is one parsed line.
type Command struct {
	Op    Op
	N     int    // step's count, disas's instructions, vcpu's number
	Addr  string // mem's and break's address expression, resolved later
	Len   int    // mem's length
	Break BreakKind
	// Reason is break exit's reason; Lo and Hi a port or MMIO range.
	Reason kvm.ExitReason
	Lo, Hi uint64
}

// exitNames are the short names break exit takes besides KVM_EXIT_*.
var exitNames = map[string]kvm.ExitReason{
	"io": kvm.ExitIO, "mmio": kvm.ExitMMIO, "hlt": kvm.ExitHLT, "shutdown": kvm.ExitShutdown,
	"system_event": kvm.ExitSystemEvent, "internal_error": kvm.ExitInternalError,
	"fail_entry": kvm.ExitFailEntry, "debug": kvm.ExitDebug,
}

// Parse reads one command line. Numbers are C's: 0x for hex, else decimal.
func Parse(line string) (Command, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Command{}, fmt.Errorf("empty command")
	}
	op, ok := commands[strings.ToLower(f[0])]
	if !ok {
		return Command{}, fmt.Errorf("unknown command %q (help lists them)", f[0])
	}
	args := f[1:]
	c := Command{Op: op}
	argc := func(lo, hi int) error {
		if len(args) < lo || len(args) > hi {
			if lo == hi {
				return fmt.Errorf("%s takes %d argument(s), not %d", f[0], lo, len(args))
			}
			return fmt.Errorf("%s takes %d to %d arguments, not %d", f[0], lo, hi, len(args))
		}
		return nil
	}
	var err error
	switch op {
	case OpStep, OpDisas:
		if err = argc(0, 1); err != nil {
			return c, err
		}
		c.N = 1
		if op == OpDisas {
			c.N = 8
		}
		if len(args) == 1 {
			c.N, err = count(args[0])
		}
	case OpVCPU:
		if err = argc(1, 1); err != nil {
			return c, err
		}
		var n uint64
		n, err = strconv.ParseUint(args[0], 0, 16)
		c.N = int(n)
	case OpMem:
		if err = argc(1, 2); err != nil {
			return c, err
		}
		c.Addr, c.Len = args[0], 64
		if len(args) == 2 {
			c.Len, err = count(args[1])
		}
		if err == nil && c.Len > 4096 {
			err = fmt.Errorf("mem shows at most 4096 bytes at once")
		}
	case OpBreak:
		err = parseBreak(&c, args)
	default:
		err = argc(0, 0)
	}
	return c, err
}

// count is a positive number.
func count(s string) (int, error) {
	n, err := strconv.ParseUint(s, 0, 31)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q: want a positive number", s)
	}
	return int(n), nil
}

func parseBreak(c *Command, args []string) error {
	if len(args) == 0 {
		c.Break = BreakList
		return nil
	}
	kind, rest := strings.ToLower(args[0]), args[1:]
	one := func() error {
		if len(rest) != 1 {
			return fmt.Errorf("break %s takes one argument", kind)
		}
		return nil
	}
	switch kind {
	case "clear":
		if len(rest) != 0 {
			return fmt.Errorf("break clear takes no argument")
		}
		c.Break = BreakClear
	case "delete", "del":
		c.Break = BreakDelete
		if err := one(); err != nil {
			return err
		}
		c.Addr = rest[0]
	case "addr":
		c.Break = BreakAddr
		if err := one(); err != nil {
			return err
		}
		c.Addr = rest[0]
	case "exit":
		c.Break = BreakExit
		if err := one(); err != nil {
			return err
		}
		r, err := ParseReason(rest[0])
		if err != nil {
			return err
		}
		c.Reason = r
	case "port", "io":
		c.Break = BreakPort
		if err := one(); err != nil {
			return err
		}
		lo, hi, err := parseRange(rest[0])
		if err != nil {
			return err
		}
		if hi > 0xffff {
			return fmt.Errorf("port %#x: ports end at 0xffff", hi)
		}
		c.Lo, c.Hi = lo, hi
	case "mmio":
		c.Break = BreakMMIO
		if err := one(); err != nil {
			return err
		}
		lo, hi, err := parseRange(rest[0])
		if err != nil {
			return err
		}
		c.Lo, c.Hi = lo, hi
	default:
		if len(args) != 1 {
			return fmt.Errorf("break %q: give ADDR, addr ADDR, exit REASON, port P[-Q], mmio A[-B], delete ADDR or clear", args[0])
		}
		c.Break, c.Addr = BreakAddr, args[0]
	}
	return nil
}

// ParseReason reads an exit reason: its KVM name (KVM_EXIT_IO) or a short
// one (io, mmio, hlt, shutdown, system_event, internal_error, ...).
func ParseReason(s string) (kvm.ExitReason, error) {
	l := strings.ToLower(s)
	if r, ok := exitNames[strings.TrimPrefix(l, "kvm_exit_")]; ok {
		return r, nil
	}
	for r := kvm.ExitReason(0); r < 64; r++ {
		if strings.EqualFold(r.String(), s) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("exit reason %q: give io, mmio, hlt, shutdown, system_event, internal_error or a KVM_EXIT_ name", s)
}

// parseRange reads A, A-B or A+LEN.
func parseRange(s string) (uint64, uint64, error) {
	num := func(x string) (uint64, error) {
		v, err := strconv.ParseUint(x, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: want a number (0x for hex)", x)
		}
		return v, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		lo, err := num(a)
		if err != nil {
			return 0, 0, err
		}
		hi, err := num(b)
		if err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range %s ends before it starts", s)
		}
		return lo, hi, nil
	}
	if a, b, ok := strings.Cut(s, "+"); ok {
		lo, err := num(a)
		if err != nil {
			return 0, 0, err
		}
		n, err := num(b)
		if err != nil || n == 0 || lo+n-1 < lo {
			return 0, 0, fmt.Errorf("range %s: want a length from 1 that does not wrap", s)
		}
		return lo, lo + n - 1, nil
	}
	v, err := num(s)
	return v, v, err
}

// spaceOf is the bus of a break kind.
func spaceOf(k BreakKind) devices.Space {
	if k == BreakMMIO {
		return devices.MMIO
	}
	return devices.PortIO
}

// Help is the command list the help command prints.
const Help = `commands (abbreviations in brackets; an empty line repeats the last command):
  step [N]        [s]  run N guest instructions (1), reporting each stop
  next            [n]  run to the next VM exit to user space, and stop before govmm handles it
  cont            [c]  run until a breakpoint, a break, or the guest's end (also: continue)
  break ADDR      [b]  stop before the instruction at ADDR (a number, a symbol, sym+off)
  break exit R         stop at every exit of reason R (io, mmio, hlt, shutdown, KVM_EXIT_...)
  break port P[-Q]     stop at accesses to ports P..Q
  break mmio A[-B]     stop at MMIO accesses to A..B (or A+LEN)
  break delete ADDR    remove the breakpoint at ADDR; break clear removes every break
  break                list the breaks
  regs            [r]  the registers; * marks those that changed since the last stop
  mem ADDR [LEN]  [x]  LEN bytes (64) of memory at linear address ADDR (a number, register or symbol)
  disas [N]       [d]  N instructions (8) from RIP, with the ones stepped through before it
  stats           [t]  the exits since the last stop, and KVM's own counters
  vcpu N               work on vCPU N
  help            [h]  this list
  quit            [q]  end the VM
`
