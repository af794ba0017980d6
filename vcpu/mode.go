package vcpu

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/govmm/govmm/kvm"
)

// Mode is the mode an x86 CPU executes in, which decides how its
// instruction bytes decode (Intel SDM vol. 3, 2.2 "Modes of operation").
type Mode int

// Modes. The zero value is ModeUnknown: registers that could not be read.
const (
	ModeUnknown Mode = iota
	// ModeReal: CR0.PE clear. 16-bit code, segment base = selector × 16.
	ModeReal
	// ModeVM86: virtual-8086 mode, RFLAGS.VM set in protected mode.
	ModeVM86
	// ModeProtected16: protected mode with a 16-bit code segment (CS.D clear).
	ModeProtected16
	// ModeProtected32: protected mode with a 32-bit code segment.
	ModeProtected32
	// ModeCompat16: long mode (EFER.LMA) with a 16-bit code segment.
	ModeCompat16
	// ModeCompat32: long mode with a 32-bit code segment (compatibility mode).
	ModeCompat32
	// ModeLong: 64-bit mode, long mode with CS.L set.
	ModeLong
)

// RFLAGS.VM, the virtual-8086 mode flag.
const rflagsVM = 1 << 17

// ModeOf derives the mode from the special registers and RFLAGS: CR0.PE,
// EFER.LMA, RFLAGS.VM and the code segment's L and D bits.
func ModeOf(s *kvm.Sregs, rflags uint64) Mode {
	switch {
	case s.CR0&1 == 0:
		return ModeReal
	case s.EFER&eferLMA != 0 && s.CS.L != 0:
		return ModeLong
	case s.EFER&eferLMA != 0 && s.CS.DB != 0:
		return ModeCompat32
	case s.EFER&eferLMA != 0:
		return ModeCompat16
	case rflags&rflagsVM != 0:
		return ModeVM86
	case s.CS.DB != 0:
		return ModeProtected32
	}
	return ModeProtected16
}

// Bits is the default operand and address size of code in the mode: 16,
// 32 or 64; 0 for ModeUnknown.
func (m Mode) Bits() int {
	switch m {
	case ModeReal, ModeVM86, ModeProtected16, ModeCompat16:
		return 16
	case ModeProtected32, ModeCompat32:
		return 32
	case ModeLong:
		return 64
	}
	return 0
}

var modeNames = [...]string{
	ModeUnknown:     "unknown",
	ModeReal:        "real",
	ModeVM86:        "vm86",
	ModeProtected16: "protected16",
	ModeProtected32: "protected",
	ModeCompat16:    "compat16",
	ModeCompat32:    "compat",
	ModeLong:        "long",
}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Instruction is one decoded instruction.
type Instruction struct {
	Len  int         // bytes it takes
	Text string      // Intel syntax, as the Intel manuals write it
	Inst x86asm.Inst // the decoded form, for looking at its operands
	Op   x86asm.Op   // its operation
	Mode Mode        // the mode it was decoded in
	PC   uint64      // where it is, for relative branch targets
	Raw  [15]byte    // its bytes, Raw[:Len]
}

// Decode decodes the instruction at the start of code in mode m; pc is its
// address, which makes branch targets absolute in Text.
func Decode(code []byte, m Mode, pc uint64) (Instruction, error) {
	in, err := DecodeInst(code, m)
	if err != nil {
		return Instruction{}, fmt.Errorf("at %#x: %w", pc, err)
	}
	return Describe(in, code, m, pc), nil
}

// DecodeInst decodes the instruction at the start of code without
// writing it out: cheaper, for looking at many candidates.
func DecodeInst(code []byte, m Mode) (x86asm.Inst, error) {
	if m.Bits() == 0 {
		return x86asm.Inst{}, fmt.Errorf("cannot decode in mode %v", m)
	}
	if len(code) == 0 {
		return x86asm.Inst{}, fmt.Errorf("no instruction bytes")
	}
	in, err := x86asm.Decode(code, m.Bits())
	if err == nil && in.Op == 0 {
		// x86asm gives a lone "prefix" for bytes that end mid-instruction.
		err = fmt.Errorf("the bytes end inside an instruction")
	}
	if err != nil {
		return x86asm.Inst{}, fmt.Errorf("undecodable bytes % x: %w", code[:min(len(code), 15)], err)
	}
	return in, nil
}

// Describe completes a decoded instruction: its bytes (from code) and
// its text.
func Describe(in x86asm.Inst, code []byte, m Mode, pc uint64) Instruction {
	i := Instruction{Len: in.Len, Inst: in, Op: in.Op, Mode: m, PC: pc}
	copy(i.Raw[:], code[:in.Len])
	i.Text = x86asm.IntelSyntax(in, pc, nil)
	return i
}
