package vcpu

import (
	"errors"
	"fmt"

	"github.com/govmm/govmm/kvm"
)

// memInsn is an instruction with a ModRM memory operand, decoded in 64-bit
// mode, as far as a fixup needs it: its prefixes, its opcode, the ModRM reg
// field, how the operand's address is formed, and its length. It follows
// the Intel SDM vol. 2A, chapter 2 "Instruction format": 2.1.1
// (prefixes), 2.1.3 and table 2-2 (ModR/M), table 2-3 (SIB), 2.2.1 (REX
// prefixes) and 2.2.1.6 (RIP-relative addressing).
type memInsn struct {
	lock, rep, repne, opsize bool // F0, F3, F2, 66
	seg                      byte // the segment-override prefix (26, 2E, 36, 3E, 64, 65); 0 for none
	addr32                   bool // 67: 32-bit address size
	rex                      byte // the REX prefix, 0 for none

	opcode []byte // one byte, or 0F and a second byte
	reg    byte   // ModRM.reg extended by REX.R: a register, or the opcode's /digit

	base  int   // register number 0-15, or regNone, or regRIP
	index int   // register number 0-15, or regNone
	scale uint  // the index is shifted left by this (0-3)
	disp  int64 // sign-extended displacement

	length int // bytes, prefixes included
}

// Base and index values that are not general-purpose registers.
const (
	regNone = -1
	regRIP  = -2
)

// maxInsnLen is the architectural limit on an instruction's length.
const maxInsnLen = 15

var errNotMemOperand = errors.New("ModRM names a register, not memory")

// decodeMemInsn decodes the instruction at the start of b. It knows one-
// and two-byte (0F xx) opcodes followed by ModRM, and fails on anything
// else (three-byte 0F 38/0F 3A opcodes, VEX, register operands, bytes
// that end too soon); the caller checks that the opcode is one it handles.
func decodeMemInsn(b []byte) (*memInsn, error) {
	if len(b) > maxInsnLen {
		b = b[:maxInsnLen]
	}
	m := &memInsn{base: regNone, index: regNone}
	i := 0
	next := func() (byte, error) {
		if i >= len(b) {
			return 0, fmt.Errorf("instruction bytes end after %d bytes", i)
		}
		i++
		return b[i-1], nil
	}
	var c byte
	var err error
prefixes:
	for {
		if c, err = next(); err != nil {
			return nil, err
		}
		switch {
		case c == 0xF0:
			m.lock = true
		case c == 0xF2:
			m.repne = true
		case c == 0xF3:
			m.rep = true
		case c == 0x66:
			m.opsize = true
		case c == 0x67:
			m.addr32 = true
		case c == 0x26 || c == 0x2E || c == 0x36 || c == 0x3E || c == 0x64 || c == 0x65:
			if m.seg != 0 {
				// Which one wins is not architectural (2.1.1: one prefix
				// of each group is useful); leave it undecoded.
				return nil, fmt.Errorf("two segment-override prefixes (%02x %02x)", m.seg, c)
			}
			m.seg = c
		case c&0xF0 == 0x40:
			if m.rex != 0 {
				return nil, fmt.Errorf("two REX prefixes (%02x %02x)", m.rex, c)
			}
			m.rex = c
			continue
		default:
			break prefixes
		}
		if m.rex != 0 {
			// A REX prefix counts only right before the opcode (2.2.1);
			// hardware ignores one that another prefix follows.
			// Compilers never emit that: leave it undecoded.
			return nil, fmt.Errorf("REX prefix %02x before another prefix", m.rex)
		}
	}
	m.opcode = b[i-1 : i]
	switch c {
	case 0x0F:
		if c, err = next(); err != nil {
			return nil, err
		}
		if c == 0x38 || c == 0x3A {
			return nil, fmt.Errorf("three-byte opcode 0f %02x is not decoded", c)
		}
		m.opcode = b[i-2 : i]
	case 0xC4, 0xC5, 0x62:
		return nil, fmt.Errorf("VEX or EVEX prefix %02x is not decoded", c)
	}
	modrm, err := next()
	if err != nil {
		return nil, err
	}
	mod, rm := modrm>>6, int(modrm&7)
	m.reg = modrm>>3&7 | m.rex>>2&1<<3
	if mod == 3 {
		return nil, errNotMemOperand
	}
	rexB, rexX := int(m.rex&1)<<3, int(m.rex>>1&1)<<3
	dispSize := [3]int{0, 1, 4}[mod]
	switch {
	case rm == 4: // a SIB byte follows
		sib, err := next()
		if err != nil {
			return nil, err
		}
		m.scale = uint(sib >> 6)
		if idx := int(sib>>3&7) | rexX; idx != 4 { // index 100 without REX.X: none
			m.index = idx
		}
		if sib&7 == 5 && mod == 0 { // base 101 with mod 00: disp32, no base
			dispSize = 4
		} else {
			m.base = int(sib&7) | rexB
		}
	case rm == 5 && mod == 0: // RIP-relative in 64-bit mode
		m.base = regRIP
		dispSize = 4
	default:
		m.base = rm | rexB
	}
	if i+dispSize > len(b) {
		return nil, fmt.Errorf("instruction bytes end inside the %d-byte displacement", dispSize)
	}
	switch dispSize {
	case 1:
		m.disp = int64(int8(b[i]))
	case 4:
		m.disp = int64(int32(uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24))
	}
	m.length = i + dispSize
	return m, nil
}

// linear returns the linear address of the operand when the instruction
// runs at regs.RIP in 64-bit mode: base + index<<scale + disp, cut to 32
// bits under an address-size prefix, plus the FS or GS base when one of
// those is the segment (other segments have base 0 in 64-bit mode, SDM
// vol. 3A, 3.4.4).
func (m *memInsn) linear(regs *kvm.Regs, sregs *kvm.Sregs) uint64 {
	var a uint64
	switch m.base {
	case regNone:
	case regRIP:
		a = regs.RIP + uint64(m.length) // relative to the next instruction
	default:
		a = gpr(regs, m.base)
	}
	if m.index != regNone {
		a += gpr(regs, m.index) << m.scale
	}
	a += uint64(m.disp)
	if m.addr32 {
		a &= 0xFFFF_FFFF
	}
	switch m.seg {
	case 0x64:
		a += sregs.FS.Base
	case 0x65:
		a += sregs.GS.Base
	}
	return a
}

// gpr returns general-purpose register n in the encoding's order (SDM vol.
// 2A, table 2-2: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, then r8-r15).
func gpr(r *kvm.Regs, n int) uint64 {
	return [16]uint64{
		r.RAX, r.RCX, r.RDX, r.RBX, r.RSP, r.RBP, r.RSI, r.RDI,
		r.R8, r.R9, r.R10, r.R11, r.R12, r.R13, r.R14, r.R15,
	}[n&15]
}
