package vcpu

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/memory"
)

func TestTranslate(t *testing.T) {
	ram := make([]byte, 1<<20)
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: ram})
	if err != nil {
		t.Fatal(err)
	}
	put64 := func(addr, v uint64) { binary.LittleEndian.PutUint64(ram[addr:], v) }
	put32 := func(addr, v uint64) { binary.LittleEndian.PutUint32(ram[addr:], uint32(v)) }
	const p, ps = ptePresent | 2, ptePresent | 2 | ptePS

	// 4-level: PML4 at 0x1000.
	// 0xffffffff81000000 -> 2 MiB page at 0x1000000 (high kernel map).
	// 0x0000000000403000 -> 4 KiB page at 0x7000.
	// 0x0000008040000000 -> 1 GiB page at 0x40000000.
	hi := uint64(0xffffffff81000000)
	put64(0x1000+(hi>>39&511)*8, 0x2000|p)
	put64(0x2000+(hi>>30&511)*8, 0x3000|p)
	put64(0x3000+(hi>>21&511)*8, 0x1000000|ps)
	put64(0x1000+0, 0x4000|p)
	put64(0x4000+0, 0x5000|p)
	put64(0x5000+2*8, 0x6000|p)
	put64(0x6000+3*8, 0x7000|p)
	put64(0x1000+1*8, 0x8000|p)
	put64(0x8000+1*8, 0x40000000|ps)
	// 32-bit paging at 0x10000 with a 4 MiB page for 0xc0400000 and a
	// 4 KiB page for 0x00001234.
	put32(0x10000+(0xc0400000>>22)*4, 0x00800000|ps)
	put32(0x10000+0, 0x11000|p)
	put32(0x11000+1*4, 0x22000|p)

	long := Paging{CR0: cr0PG | 1, CR3: 0x1000, CR4: cr4PAE, EFER: eferLMA}
	pse32 := Paging{CR0: cr0PG | 1, CR3: 0x10000, CR4: cr4PSE}
	tests := []struct {
		name    string
		p       Paging
		linear  uint64
		want    memory.GuestAddr
		wantErr bool
	}{
		{"paging off", Paging{}, 0x1234, 0x1234, false},
		{"2 MiB page", long, hi + 0x1234, 0x1001234, false},
		{"4 KiB page", long, 0x403abc, 0x7abc, false},
		{"1 GiB page", long, 0x80_4000_0000 + 0x12345, 0x40012345, false},
		{"not present", long, 0x7fff_0000_0000, 0, true},
		{"32-bit 4 MiB page", pse32, 0xc0400000 + 0x5678, 0x805678, false},
		{"32-bit 4 KiB page", pse32, 0x1234, 0x22234, false},
	}
	for _, tt := range tests {
		got, err := Translate(mem, tt.p, tt.linear)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Translate(%s, %#x) = %v, %v, want %v, error %v", tt.name, tt.linear, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzTranslate walks page tables the guest controls: any bytes, any
// control registers, any address must give an address or an error, never
// a panic or an endless walk.
func FuzzTranslate(f *testing.F) {
	f.Add(make([]byte, 0x3000), uint64(cr0PG|1), uint64(0x1000), uint64(cr4PAE), uint64(eferLMA), uint64(0xffffffff81000000))
	f.Add([]byte{3, 0x10, 0, 0, 0, 0, 0, 0}, uint64(cr0PG), uint64(0), uint64(cr4PSE), uint64(0), uint64(0x1234))
	f.Add([]byte{0x83, 0, 0, 0}, uint64(cr0PG), uint64(0), uint64(cr4PAE), uint64(0), uint64(0xc0000000))
	f.Fuzz(func(t *testing.T, ram []byte, cr0, cr3, cr4, efer, linear uint64) {
		if len(ram) == 0 {
			return
		}
		mem, err := memory.FromRegions(memory.Region{Start: 0, Host: ram})
		if err != nil {
			t.Fatal(err)
		}
		pa, err := Translate(mem, Paging{CR0: cr0, CR3: cr3, CR4: cr4, EFER: efer}, linear)
		if err == nil && cr0&cr0PG == 0 && uint64(pa) != linear {
			t.Errorf("Translate with paging off = %v, want %#x", pa, linear)
		}
	})
}
