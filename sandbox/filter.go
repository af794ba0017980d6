package sandbox

// The seccomp filter as a classic BPF program (the kernel's
// Documentation/userspace-api/seccomp_filter.rst): it reads struct
// seccomp_data (nr at offset 0, arch at 4, the six arguments as 64-bit
// little-endian words from 16) and returns an action.
//
// Layout: nr is loaded once; then, for each allowed call in the
// allow-list's order,
//
//	jeq <nr>, into the body, else past it
//	body: ret ALLOW | ret ERRNO | one block per case, then ret <default>
//
// A call that is not this one costs one instruction. A body longer than a
// conditional jump's 8-bit offset reaches (the ioctl requests') is
// skipped with a ja, whose offset is 32 bits. Every body ends in a ret,
// so the accumulator still holds nr wherever the chain goes on.
//
// A case's block checks its conditions on the argument's high and low
// 32-bit words; a failed check jumps to the next block, and a block that
// gets to its end returns ALLOW. Jumps stay inside a body.

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Action is what the filter returns for a call (SECCOMP_RET_*).
type Action uint32

const (
	ActionAllow Action = unix.SECCOMP_RET_ALLOW
	ActionTrap  Action = unix.SECCOMP_RET_TRAP // SIGSYS, which sigsys_amd64.s reports
	ActionLog   Action = unix.SECCOMP_RET_LOG  // allow, and log to the audit log
)

// ActionErrno fails the call with errno without running it.
func ActionErrno(errno unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(errno)&unix.SECCOMP_RET_DATA)
}

// Offsets in struct seccomp_data, and the x32 ABI's bit in nr.
const (
	dataNr        = 0
	dataArch      = 4
	dataArgs      = 16
	x32SyscallBit = 0x40000000
)

// syscallEntry is a system call's name and number (sysnumbers_amd64.go).
type syscallEntry struct {
	name string
	nr   uint16
}

// syscallNumber is the x86_64 number of the system call called name.
func syscallNumber(name string) (int, bool) {
	i, ok := slices.BinarySearchFunc(syscallsByName[:], name, func(e syscallEntry, name string) int {
		return strings.Compare(e.name, name)
	})
	if !ok {
		return 0, false
	}
	return int(syscallsByName[i].nr), true
}

// Program assembles the filter: the allow-list, with action for the rest.
// Calls of other architectures (i386 through int 0x80) get action too;
// x32 calls fail with ENOSYS.
func Program(rules []Rule, action Action) ([]bpf.Instruction, error) {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: dataArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipTrue: 1},
		bpf.RetConstant{Val: uint32(action)},
		bpf.LoadAbsolute{Off: dataNr, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipFalse: 1},
		bpf.RetConstant{Val: uint32(ActionErrno(unix.ENOSYS))},
	}
	for _, r := range merge(rules) {
		nr, ok := syscallNumber(r.Syscall)
		if !ok {
			return nil, fmt.Errorf("seccomp: %q is not an x86_64 system call", r.Syscall)
		}
		body, err := ruleBody(r, action)
		if err != nil {
			return nil, err
		}
		if len(body) <= 255 {
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: uint8(len(body))})
		} else {
			prog = append(prog,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipTrue: 1},
				bpf.Jump{Skip: uint32(len(body))})
		}
		prog = append(prog, body...)
	}
	prog = append(prog, bpf.RetConstant{Val: uint32(action)})
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, more than the kernel's %d", len(prog), unix.BPF_MAXINSNS)
	}
	return prog, nil
}

// ruleBody is what runs once the call is r's.
func ruleBody(r Rule, action Action) ([]bpf.Instruction, error) {
	switch {
	case r.Errno != 0:
		return []bpf.Instruction{bpf.RetConstant{Val: uint32(ActionErrno(r.Errno))}}, nil
	case len(r.Cases) == 0:
		return []bpf.Instruction{bpf.RetConstant{Val: uint32(ActionAllow)}}, nil
	}
	var body []bpf.Instruction
	for _, c := range r.Cases {
		block, err := caseBlock(c)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %s %s: %w", r.Syscall, c.Name, err)
		}
		body = append(body, block...)
	}
	return append(body, bpf.RetConstant{Val: uint32(action)}), nil
}

// step is one instruction of a case's block whose jumps are not resolved
// yet: fail jumps to the block's end (the next case), pass to the next
// condition.
type step struct {
	ins       bpf.Instruction
	jumpTrue  target
	jumpFalse target
	isJump    bool
	cond      bpf.JumpTest
	val       uint32
}

type target int

const (
	next      target = iota // the following instruction
	skipTwo                 // two further on: past the next condition's two words' check
	failBlock               // the next case's block
)

// caseBlock checks every condition of c, then returns ALLOW.
func caseBlock(c Case) ([]bpf.Instruction, error) {
	var steps []step
	load := func(off uint32) { steps = append(steps, step{ins: bpf.LoadAbsolute{Off: off, Size: 4}}) }
	and := func(v uint32) { steps = append(steps, step{ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: v}}) }
	jump := func(cond bpf.JumpTest, v uint32, t, f target) {
		steps = append(steps, step{isJump: true, cond: cond, val: v, jumpTrue: t, jumpFalse: f})
	}
	for _, cd := range c.Conds {
		if cd.Arg < 0 || cd.Arg > 5 {
			return nil, fmt.Errorf("argument %d: system calls have arguments 0-5", cd.Arg)
		}
		lo := uint32(dataArgs + 8*cd.Arg) // little-endian: the low word first
		hi, vlo, vhi := lo+4, uint32(cd.Value), uint32(cd.Value>>32)
		switch cd.Op {
		case Equal: // hi == vhi && lo == vlo
			load(hi)
			jump(bpf.JumpEqual, vhi, next, failBlock)
			load(lo)
			jump(bpf.JumpEqual, vlo, next, failBlock)
		case NotEqual: // hi != vhi || lo != vlo
			load(hi)
			jump(bpf.JumpEqual, vhi, next, skipTwo)
			load(lo)
			jump(bpf.JumpEqual, vlo, failBlock, next)
		case BitsSet: // hi&vhi == vhi && lo&vlo == vlo
			load(hi)
			and(vhi)
			jump(bpf.JumpEqual, vhi, next, failBlock)
			load(lo)
			and(vlo)
			jump(bpf.JumpEqual, vlo, next, failBlock)
		case BitsClear: // hi&vhi == 0 && lo&vlo == 0
			load(hi)
			jump(bpf.JumpBitsSet, vhi, failBlock, next)
			load(lo)
			jump(bpf.JumpBitsSet, vlo, failBlock, next)
		default:
			return nil, fmt.Errorf("unknown comparison %d", int(cd.Op))
		}
	}
	steps = append(steps, step{ins: bpf.RetConstant{Val: uint32(ActionAllow)}})
	out := make([]bpf.Instruction, len(steps))
	for i, s := range steps {
		if !s.isJump {
			out[i] = s.ins
			continue
		}
		skip := func(t target) (uint8, error) {
			n := 0 // next
			switch t {
			case skipTwo:
				n = 2
			case failBlock:
				n = len(steps) - i - 1
			}
			if n > 255 {
				return 0, fmt.Errorf("%d conditions are too many for one case", len(c.Conds))
			}
			return uint8(n), nil
		}
		t, err := skip(s.jumpTrue)
		if err != nil {
			return nil, err
		}
		f, err := skip(s.jumpFalse)
		if err != nil {
			return nil, err
		}
		out[i] = bpf.JumpIf{Cond: s.cond, Val: s.val, SkipTrue: t, SkipFalse: f}
	}
	return out, nil
}
