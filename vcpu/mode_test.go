package vcpu

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

func TestModeOf(t *testing.T) {
	const (
		pe  = 1
		lma = eferLMA
	)
	tests := []struct {
		name   string
		cr0    uint64
		efer   uint64
		l, db  uint8
		rflags uint64
		want   Mode
		bits   int
	}{
		{"reset state", 0x60000010, 0, 0, 0, 2, ModeReal, 16},
		{"real mode ignores a stale 32-bit CS", 0x10, 0, 0, 1, 2, ModeReal, 16},
		{"protected, 16-bit code", pe, 0, 0, 0, 2, ModeProtected16, 16},
		{"protected, 32-bit code", pe, 0, 0, 1, 2, ModeProtected32, 32},
		{"virtual-8086", pe, 0, 0, 1, 2 | rflagsVM, ModeVM86, 16},
		{"long mode, 64-bit code", pe | 1<<31, lma | 1<<8, 1, 0, 2, ModeLong, 64},
		{"long mode, compatibility 32-bit", pe | 1<<31, lma, 0, 1, 2, ModeCompat32, 32},
		{"long mode, compatibility 16-bit", pe | 1<<31, lma, 0, 0, 2, ModeCompat16, 16},
		{"EFER.LME without LMA is not long mode yet", pe, 1 << 8, 0, 1, 2, ModeProtected32, 32},
	}
	for _, tt := range tests {
		s := kvm.Sregs{CR0: tt.cr0, EFER: tt.efer}
		s.CS.L, s.CS.DB = tt.l, tt.db
		got := ModeOf(&s, tt.rflags)
		if got != tt.want || got.Bits() != tt.bits {
			t.Errorf("%s: ModeOf(cr0=%#x efer=%#x cs.l=%d cs.d=%d rflags=%#x) = %v (%d bits), want %v (%d bits)",
				tt.name, tt.cr0, tt.efer, tt.l, tt.db, tt.rflags, got, got.Bits(), tt.want, tt.bits)
		}
	}
	if got := ModeUnknown.Bits(); got != 0 {
		t.Errorf("ModeUnknown.Bits() = %d, want 0", got)
	}
}

// TestDecode: the same bytes mean different instructions in different
// modes, which is why the trace and the stepper decode in the guest's mode.
func TestDecode(t *testing.T) {
	tests := []struct {
		code    []byte
		mode    Mode
		pc      uint64
		want    string
		wantLen int
	}{
		{[]byte{0xb8, 0x34, 0x12, 0x00, 0x00}, ModeReal, 0x7c00, "mov ax, 0x1234", 3},
		{[]byte{0xb8, 0x34, 0x12, 0x00, 0x00}, ModeProtected32, 0x100000, "mov eax, 0x1234", 5},
		{[]byte{0x48, 0xb8, 1, 0, 0, 0, 0, 0, 0, 0}, ModeLong, 0x100000, "mov rax, 0x1", 10},
		{[]byte{0x48, 0xb8}, ModeProtected32, 0, "dec eax", 1}, // REX.W is dec eax outside 64-bit mode
		{[]byte{0xee}, ModeReal, 0x7c05, "out dx, al", 1},
		{[]byte{0xe6, 0xf4}, ModeLong, 0x1000, "out 0xf4, al", 2},
		{[]byte{0xeb, 0xfe}, ModeReal, 0x7c10, "jmp 0x7c10", 2}, // a branch target is absolute
		{[]byte{0x0f, 0x01, 0x16, 0x20, 0x7c}, ModeReal, 0x7c00, "lgdt ptr [0x7c20]", 5},
		{[]byte{0xf4}, ModeLong, 0, "hlt", 1},
	}
	for _, tt := range tests {
		in, err := Decode(tt.code, tt.mode, tt.pc)
		if err != nil || in.Text != tt.want || in.Len != tt.wantLen {
			t.Errorf("Decode(% x, %v, %#x) = %q (%d bytes), %v, want %q (%d bytes)", tt.code, tt.mode, tt.pc, in.Text, in.Len, err, tt.want, tt.wantLen)
		}
	}
	for _, tt := range []struct {
		code []byte
		mode Mode
	}{
		{nil, ModeLong},
		{[]byte{0x90}, ModeUnknown},
		{[]byte{0xb8, 0x34}, ModeProtected32}, // truncated: mov eax needs 4 more bytes
	} {
		if in, err := Decode(tt.code, tt.mode, 0); err == nil {
			t.Errorf("Decode(% x, %v) = %q, want an error", tt.code, tt.mode, in.Text)
		}
	}
}
