package trace

import (
	"testing"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// TestMatchesMMIOWidth: read backwards, the tail of "mov dword ptr
// [ebp+0x0], 1" (c7 45 00 01 00 00 00) decodes as "add byte ptr [eax],
// al" (00 00), which cannot have made a 4-byte write; the whole
// instruction can.
func TestMatchesMMIOWidth(t *testing.T) {
	code := []byte{0xc7, 0x45, 0x00, 0x01, 0x00, 0x00, 0x00}
	write4 := &kvm.MMIOExit{Addr: 0xc0000014, Write: true, Data: []byte{1, 0, 0, 0}}
	write1 := &kvm.MMIOExit{Addr: 0xc0000014, Write: true, Data: []byte{1}}
	tests := []struct {
		name string
		from int // where decoding starts in code
		exit *kvm.MMIOExit
		want bool
	}{
		{"tail, 4-byte write", 5, write4, false},
		{"whole, 4-byte write", 0, write4, true},
		{"tail, 1-byte write", 5, write1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := vcpu.DecodeInst(code[tt.from:], vcpu.ModeProtected32)
			if err != nil {
				t.Fatal(err)
			}
			if got := matches(&in, tt.exit, &kvm.Regs{}); got != tt.want {
				t.Errorf("matches(%v, %d-byte write) = %v, want %v", in, len(tt.exit.Data), got, tt.want)
			}
		})
	}
}
