package vcpu

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

func TestDecodeMemInsn(t *testing.T) {
	tests := []struct {
		name  string
		insn  []byte
		reg   byte
		base  int
		index int
		scale uint
		disp  int64
		seg   byte
		len   int
	}{
		{"ldmxcsr [rsp+0x4]", []byte{0x0f, 0xae, 0x54, 0x24, 0x04}, 2, 4, regNone, 0, 4, 0, 5},
		{"stmxcsr [rdi]", []byte{0x0f, 0xae, 0x1f}, 3, 7, regNone, 0, 0, 0, 3},
		{"ldmxcsr [rip+0x10]", []byte{0x0f, 0xae, 0x15, 0x10, 0, 0, 0}, 2, regRIP, regNone, 0, 0x10, 0, 7},
		{"ldmxcsr [r8-0x8]", []byte{0x41, 0x0f, 0xae, 0x50, 0xf8}, 2, 8, regNone, 0, -8, 0, 5},
		{"stmxcsr gs:[0x100]", []byte{0x65, 0x0f, 0xae, 0x1c, 0x25, 0, 1, 0, 0}, 3, regNone, regNone, 0, 0x100, 0x65, 9},
		{"ldmxcsr [rax+r9*4]", []byte{0x42, 0x0f, 0xae, 0x14, 0x88}, 2, 0, 9, 2, 0, 0, 5},
		{"ldmxcsr [r12*8+0x10] (index 100 with REX.X is r12)", []byte{0x4a, 0x0f, 0xae, 0x14, 0xe5, 0x10, 0, 0, 0}, 2, regNone, 12, 3, 0x10, 0, 9},
		{"ldmxcsr [r12] (rm 100 means SIB)", []byte{0x41, 0x0f, 0xae, 0x14, 0x24}, 2, 12, regNone, 0, 0, 0, 5},
		{"ldmxcsr [r13+0x0] (base 101 needs a displacement)", []byte{0x41, 0x0f, 0xae, 0x55, 0x00}, 2, 13, regNone, 0, 0, 0, 5},
		{"ldmxcsr [rsp+0x100] (disp32)", []byte{0x0f, 0xae, 0x94, 0x24, 0, 1, 0, 0}, 2, 4, regNone, 0, 0x100, 0, 8},
		{"ldmxcsr [ebp-0x4] (address-size prefix)", []byte{0x67, 0x0f, 0xae, 0x55, 0xfc}, 2, 5, regNone, 0, -4, 0, 5},
		{"mov eax, [rbx+0x8] (one-byte opcode)", []byte{0x8b, 0x43, 0x08}, 0, 3, regNone, 0, 8, 0, 3},
	}
	for _, tt := range tests {
		m, err := decodeMemInsn(tt.insn)
		if err != nil {
			t.Errorf("decodeMemInsn(% x) [%s] = %v", tt.insn, tt.name, err)
			continue
		}
		got := fmt.Sprintf("reg %d base %d index %d scale %d disp %d seg %#x len %d", m.reg, m.base, m.index, m.scale, m.disp, m.seg, m.length)
		want := fmt.Sprintf("reg %d base %d index %d scale %d disp %d seg %#x len %d", tt.reg, tt.base, tt.index, tt.scale, tt.disp, tt.seg, tt.len)
		if got != want {
			t.Errorf("decodeMemInsn(% x) [%s] = %s, want %s", tt.insn, tt.name, got, want)
		}
	}
}

func TestDecodeMemInsnErrors(t *testing.T) {
	tests := []struct {
		name string
		insn []byte
	}{
		{"register operand", []byte{0x0f, 0xae, 0xd0}},
		{"no bytes", nil},
		{"prefixes only", []byte{0x66, 0x67}},
		{"ends after the escape", []byte{0x0f}},
		{"ends before ModRM", []byte{0x0f, 0xae}},
		{"ends before SIB", []byte{0x0f, 0xae, 0x54}},
		{"ends inside disp8", []byte{0x0f, 0xae, 0x54, 0x24}},
		{"ends inside disp32", []byte{0x0f, 0xae, 0x15, 1, 2, 3}},
		{"three-byte opcode", []byte{0x0f, 0x38, 0x00, 0x00}},
		{"VEX", []byte{0xc5, 0xf8, 0xae, 0x10}},
		{"REX before a legacy prefix", []byte{0x41, 0x64, 0x0f, 0xae, 0x10}},
		{"two REX prefixes", []byte{0x41, 0x41, 0x0f, 0xae, 0x10}},
		{"two segment overrides", []byte{0x65, 0x26, 0x0f, 0xae, 0x10}},
		{"16 prefixes", []byte{0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x0f, 0xae, 0x10}},
	}
	for _, tt := range tests {
		if m, err := decodeMemInsn(tt.insn); err == nil {
			t.Errorf("decodeMemInsn(% x) [%s] = %+v, want an error", tt.insn, tt.name, m)
		}
	}
	if _, err := decodeMemInsn([]byte{0x0f, 0xae, 0xd0}); !errors.Is(err, errNotMemOperand) {
		t.Errorf("decodeMemInsn(0f ae d0) = %v, want errNotMemOperand", err)
	}
}

// FuzzDecodeMemInsn checks the decoder against x/arch's x86asm, an
// independent decoder: whatever bytes the guest has, an instruction the
// fixups would take for ldmxcsr or stmxcsr must be that instruction for
// x86asm too, with the same length and the same memory operand.
func FuzzDecodeMemInsn(f *testing.F) {
	for _, s := range [][]byte{
		{0x0f, 0xae, 0x54, 0x24, 0x04},
		{0x65, 0x0f, 0xae, 0x1c, 0x25, 0, 1, 0, 0},
		{0x4a, 0x0f, 0xae, 0x14, 0xe5, 0x10, 0, 0, 0},
		{0x67, 0x0f, 0xae, 0x55, 0xfc},
		{0x0f, 0xae, 0x15, 0x10, 0, 0, 0},
		{0x66, 0x0f, 0xae, 0x38},
	} {
		f.Add(s)
	}
	regs := map[x86asm.Reg]int{
		x86asm.RAX: 0, x86asm.RCX: 1, x86asm.RDX: 2, x86asm.RBX: 3, x86asm.RSP: 4, x86asm.RBP: 5, x86asm.RSI: 6, x86asm.RDI: 7,
		x86asm.R8: 8, x86asm.R9: 9, x86asm.R10: 10, x86asm.R11: 11, x86asm.R12: 12, x86asm.R13: 13, x86asm.R14: 14, x86asm.R15: 15,
		x86asm.EAX: 0, x86asm.ECX: 1, x86asm.EDX: 2, x86asm.EBX: 3, x86asm.ESP: 4, x86asm.EBP: 5, x86asm.ESI: 6, x86asm.EDI: 7,
		x86asm.R8L: 8, x86asm.R9L: 9, x86asm.R10L: 10, x86asm.R11L: 11, x86asm.R12L: 12, x86asm.R13L: 13, x86asm.R14L: 14, x86asm.R15L: 15,
		x86asm.RIP: regRIP, x86asm.EIP: regRIP, 0: regNone,
	}
	segs := map[x86asm.Reg]byte{x86asm.FS: 0x64, x86asm.GS: 0x65}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMemInsn(b)
		if err != nil || !isMXCSRInsn(m) {
			return
		}
		if m.length > len(b) || m.length > maxInsnLen {
			t.Fatalf("decodeMemInsn(% x) length %d, past the %d bytes given or the limit", b, m.length, len(b))
		}
		in, err := x86asm.Decode(b, 64)
		if err != nil {
			t.Fatalf("decodeMemInsn(% x) = %+v, but x86asm cannot decode it: %v", b, m, err)
		}
		want := x86asm.STMXCSR
		if m.reg&7 == digitLdmxcsr {
			want = x86asm.LDMXCSR
		}
		mem, ok := in.Args[0].(x86asm.Mem)
		if in.Op != want || !ok || in.Len != m.length {
			t.Fatalf("decodeMemInsn(% x) = %v of %d bytes, x86asm says %v of %d bytes", b, want, m.length, in, in.Len)
		}
		base, okb := regs[mem.Base]
		index, oki := regs[mem.Index]
		scale := map[uint8]uint{0: 0, 1: 0, 2: 1, 4: 2, 8: 3}[mem.Scale]
		if mem.Index == 0 {
			scale = m.scale // no index: the scale bits mean nothing
		}
		seg := segs[mem.Segment] // x86asm names a segment only when prefixed
		mseg := m.seg
		if mseg != 0x64 && mseg != 0x65 {
			mseg = 0
		}
		if !okb || !oki || base != m.base || index != m.index || scale != m.scale || mem.Disp != m.disp || seg != mseg {
			t.Fatalf("decodeMemInsn(% x) operand base %d index %d scale %d disp %d seg %#x, x86asm says %v (%+v)", b, m.base, m.index, m.scale, m.disp, m.seg, in, mem)
		}
	})
}
