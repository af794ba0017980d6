package vcpu

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
)

// mapPages builds 4-level page tables in ram (PML4 at 0x1000) that map
// the 4 KiB pages at linear 0x400000 and 0x401000 to 0x8000 and 0xA000:
// two linear neighbours that are not physical neighbours.
func mapPages(ram []byte) {
	put := func(addr, v uint64) { binary.LittleEndian.PutUint64(ram[addr:], v) }
	const p = ptePresent | 2  // present, writable
	put(0x1000, 0x2000|p)     // PML4[0]
	put(0x2000, 0x3000|p)     // PDPT[0]
	put(0x3000+2*8, 0x4000|p) // PD[2]: 0x400000-0x5fffff
	put(0x4000+0*8, 0x8000|p) // PT[0]: 0x400000
	put(0x4000+1*8, 0xA000|p) // PT[1]: 0x401000
}

func TestMXCSRFixups(t *testing.T) {
	long := kvm.Sregs{CR0: cr0PG | 1, CR3: 0x1000, CR4: cr4PAE | cr4OSFXSR, EFER: eferLMA | 1<<8}
	long.CS.L = 1
	tests := []struct {
		name    string
		insn    []byte
		setup   func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE)
		mxcsr   uint32 // MXCSR after
		memAt   []int  // physical bytes to check after, little-endian
		memWant uint32
		rip     uint64 // RIP after (it starts at 0x5000)
		vector  int    // exception injected, -1 for none
		errCode int    // its error code, -1 for none
		count   string // the Fixups counter that must read 1
	}{
		{
			name: "ldmxcsr [rsp+0x4] (Linux's kernel_fpu_begin, the measured failure)", insn: []byte{0x0f, 0xae, 0x54, 0x24, 0x04},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				r.RSP = 0x400ffc - 4
				binary.LittleEndian.PutUint32(ram[0x8ffc:], 0x7f80)
			},
			mxcsr: 0x7f80, rip: 0x5005, vector: -1, errCode: -1, count: "ldmxcsr",
		},
		{
			name: "stmxcsr [rdi]", insn: []byte{0x0f, 0xae, 0x1f},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) { r.RDI = 0x400010 },
			mxcsr: 0x1fa0, memAt: []int{0x8010, 0x8011, 0x8012, 0x8013}, memWant: 0x1fa0, rip: 0x5003, vector: -1, errCode: -1, count: "stmxcsr",
		},
		{
			name: "ldmxcsr [rip+disp32]", insn: []byte{0x0f, 0xae, 0x15, 0xf9, 0xaf, 0x3f, 0x00},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				// next RIP 0x5007 + 0x3faff9 = 0x400000
				binary.LittleEndian.PutUint32(ram[0x8000:], 0x1f80|0x40)
			},
			mxcsr: 0x1fc0, rip: 0x5007, vector: -1, errCode: -1, count: "ldmxcsr",
		},
		{
			name: "stmxcsr gs:[0x110] (segment base, SIB without base or index)", insn: []byte{0x65, 0x0f, 0xae, 0x1c, 0x25, 0x10, 0x01, 0, 0},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) { s.GS.Base = 0x400000 },
			mxcsr: 0x1fa0, memAt: []int{0x8110, 0x8111, 0x8112, 0x8113}, memWant: 0x1fa0, rip: 0x5009, vector: -1, errCode: -1, count: "stmxcsr",
		},
		{
			name: "ldmxcsr [r8+r9*4-0x8] (REX.B and REX.X)", insn: []byte{0x43, 0x0f, 0xae, 0x54, 0x88, 0xf8},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				r.R8, r.R9 = 0x400000, 0x10
				binary.LittleEndian.PutUint32(ram[0x8038:], 0x9f80)
			},
			mxcsr: 0x9f80, rip: 0x5006, vector: -1, errCode: -1, count: "ldmxcsr",
		},
		{
			name: "stmxcsr [rsi] across a page boundary", insn: []byte{0x0f, 0xae, 0x1e},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) { r.RSI = 0x400ffe },
			mxcsr: 0x1fa0, memAt: []int{0x8ffe, 0x8fff, 0xA000, 0xA001}, memWant: 0x1fa0, rip: 0x5003, vector: -1, errCode: -1, count: "stmxcsr",
		},
		{
			name: "ldmxcsr [eax] (address-size prefix drops the high half)", insn: []byte{0x67, 0x0f, 0xae, 0x10},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				r.RAX = 0xffff_ffff_0040_0020
				binary.LittleEndian.PutUint32(ram[0x8020:], 0x3f80)
			},
			mxcsr: 0x3f80, rip: 0x5004, vector: -1, errCode: -1, count: "ldmxcsr",
		},
		{
			name: "ldmxcsr of a reserved bit raises #GP(0)", insn: []byte{0x0f, 0xae, 0x10},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				r.RAX = 0x400000
				binary.LittleEndian.PutUint32(ram[0x8000:], 0x1_1f80)
			},
			mxcsr: 0x1fa0, rip: 0x5000, vector: vectorGP, errCode: 0, count: "faults",
		},
		{
			name: "ldmxcsr of DAZ raises #GP(0) where MXCSR_MASK is 0 (no DAZ)", insn: []byte{0x0f, 0xae, 0x10},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) {
				r.RAX = 0x400000
				xs.Region[7] = 0
				binary.LittleEndian.PutUint32(ram[0x8000:], 0x1fc0)
			},
			mxcsr: 0x1fa0, rip: 0x5000, vector: vectorGP, errCode: 0, count: "faults",
		},
		{
			name: "without CR4.OSFXSR it raises #UD", insn: []byte{0x0f, 0xae, 0x10},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) { s.CR4 &^= cr4OSFXSR },
			mxcsr: 0x1fa0, rip: 0x5000, vector: vectorUD, errCode: -1, count: "faults",
		},
		{
			name: "with CR0.TS it raises #NM", insn: []byte{0x0f, 0xae, 0x18},
			setup: func(r *kvm.Regs, s *kvm.Sregs, ram []byte, xs *kvm.XSAVE) { s.CR0 |= cr0TS },
			mxcsr: 0x1fa0, rip: 0x5000, vector: vectorNM, errCode: -1, count: "faults",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hw := newFakeHW(exitOf(emulationFailure(tt.insn...)), exitOf(&kvm.HLTExit{}))
			v, _, ram := newTestVCPU(t, hw)
			mapPages(ram)
			hw.regs.RIP = 0x5000
			hw.sregs = long
			hw.xsave.Region[6] = 0x1fa0 // MXCSR, with XSTATE_BV saying SSE is initial
			hw.xsave.Region[7] = 0xffff // MXCSR_MASK
			tt.setup(&hw.regs, &hw.sregs, ram, &hw.xsave)
			if got, err := v.Run(context.Background()); err != nil || got != StopHalt {
				t.Fatalf("Run() = %v, %v, want halt after the fixup", got, err)
			}
			if hw.xsave.MXCSR() != tt.mxcsr || hw.regs.RIP != tt.rip {
				t.Errorf("after % x: mxcsr %#x rip %#x, want %#x and %#x", tt.insn, hw.xsave.MXCSR(), hw.regs.RIP, tt.mxcsr, tt.rip)
			}
			if tt.count == "ldmxcsr" && hw.xsave.XStateBV()&kvm.XStateSSE == 0 {
				t.Errorf("after % x: XSTATE_BV %#x lacks SSE: KVM would load the initial MXCSR", tt.insn, hw.xsave.XStateBV())
			}
			if tt.memAt != nil {
				got := uint32(ram[tt.memAt[0]]) | uint32(ram[tt.memAt[1]])<<8 | uint32(ram[tt.memAt[2]])<<16 | uint32(ram[tt.memAt[3]])<<24
				if got != tt.memWant {
					t.Errorf("after % x: memory at %#x = %#x, want %#x", tt.insn, tt.memAt, got, tt.memWant)
				}
			}
			ex := hw.events.Exception
			switch {
			case tt.vector < 0 && ex.Injected != 0:
				t.Errorf("after % x: exception %d injected, want none", tt.insn, ex.Nr)
			case tt.vector >= 0 && (ex.Injected != 1 || int(ex.Nr) != tt.vector):
				t.Errorf("after % x: injected=%d vector %d, want vector %d", tt.insn, ex.Injected, ex.Nr, tt.vector)
			case tt.vector >= 0 && (ex.HasErrorCode != 0) != (tt.errCode >= 0):
				t.Errorf("after % x: has error code %d, want %v", tt.insn, ex.HasErrorCode, tt.errCode >= 0)
			case tt.errCode >= 0 && ex.ErrorCode != uint32(tt.errCode):
				t.Errorf("after % x: error code %#x, want %#x", tt.insn, ex.ErrorCode, tt.errCode)
			}
			want, got := tt.count+"=1", v.Fixups.String()
			if !strings.Contains(got, want) || v.Fixups.Total() != 1 {
				t.Errorf("Fixups = %s (total %d), want %s and a total of 1", got, v.Fixups.Total(), want)
			}
		})
	}
}

// TestMXCSRFixupRefusals: what the fixup does not handle stops the guest
// with a report, as any emulation failure does.
func TestMXCSRFixupRefusals(t *testing.T) {
	long := kvm.Sregs{CR0: cr0PG | 1, CR3: 0x1000, CR4: cr4PAE | cr4OSFXSR, EFER: eferLMA | 1<<8}
	long.CS.L = 1
	tests := []struct {
		name  string
		insn  []byte
		sregs kvm.Sregs
		want  string
	}{
		{"operand not mapped", []byte{0x0f, 0xae, 0x10}, long, "page fault"},
		{"32-bit mode", []byte{0x0f, 0xae, 0x10}, kvm.Sregs{CR0: 1, CR4: cr4OSFXSR}, "could not emulate"},
		{"clflushopt (66 0f ae /7)", []byte{0x66, 0x0f, 0xae, 0x38}, long, "could not emulate"},
		{"lfence (register form)", []byte{0x0f, 0xae, 0xe8}, long, "could not emulate"},
		{"xrstor (0f ae /5)", []byte{0x48, 0x0f, 0xae, 0x2f}, long, "could not emulate"},
	}
	for _, tt := range tests {
		hw := newFakeHW(exitOf(emulationFailure(tt.insn...)))
		v, _, ram := newTestVCPU(t, hw)
		mapPages(ram)
		hw.sregs = tt.sregs
		hw.regs.RAX = 0x800000 // not mapped
		_, err := v.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(% x) [%s] = %v, want an error containing %q", tt.insn, tt.name, err, tt.want)
		}
		var ge *GuestError
		if !errors.As(err, &ge) {
			t.Errorf("Run(% x) [%s] error is %T, want a *GuestError report", tt.insn, tt.name, err)
		}
		if v.Fixups.Total() != 0 {
			t.Errorf("Run(% x) [%s]: Fixups = %s, want none", tt.insn, tt.name, &v.Fixups)
		}
	}
}
