package boot

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/govmm/govmm/memory"
)

func TestPlaceInitrdSizes(t *testing.T) {
	const kernelEnd = 24<<20 + 123 // not page-aligned on purpose
	ramSizes := []uint64{16 << 20, 25 << 20, 32 << 20, 33<<20 + 4096, 64 << 20, 512 << 20, 3 << 30, 3<<30 + 512<<20, 5 << 30}
	initrdSizes := []uint64{1, 4096, 1<<20 + 1, 8 << 20, 40 << 20, 300 << 20, 2 << 30}
	maxes := []uint32{0x7fff_ffff, 0xffff_ffff, 0x37ff_ffff}
	giveRE := regexp.MustCompile(`give at least (\d+) MiB`)
	for _, ram := range ramSizes {
		mem := newRAM(t, ram)
		for _, size := range initrdSizes {
			for _, amax := range maxes {
				name := fmt.Sprintf("RAM %d MiB, initrd %d bytes, initrd_addr_max %#x", ram>>20, size, amax)
				k := &Kernel{End: kernelEnd, Header: SetupHeader{InitrdAddrMax: amax}}
				limit := min(uint64(amax)+1, min(ram, uint64(MMIOHoleStart)))
				floor := uint64(kernelEnd+PageSize-1) &^ (PageSize - 1)
				fits := floor+size <= limit
				addr, err := PlaceInitrd(mem, k, size)
				if fits {
					a := uint64(addr)
					if err != nil || a%PageSize != 0 || a < floor || a+size > limit || limit-(a+size) >= PageSize {
						t.Errorf("PlaceInitrd(%s) = %v, %v, want a page-aligned address in [%#x, %#x) as high as it goes", name, addr, err, floor, limit)
					}
					continue
				}
				if err == nil {
					t.Errorf("PlaceInitrd(%s) = %v, nil, want an error (it does not fit)", name, addr)
					continue
				}
				m := giveRE.FindStringSubmatch(err.Error())
				if m == nil {
					continue // no amount of RAM helps; the error says so
				}
				// The RAM the error asks for must be enough.
				need, _ := strconv.ParseUint(m[1], 10, 64)
				bigger := newRAM(t, need<<20)
				if _, err := PlaceInitrd(bigger, k, size); err != nil {
					t.Errorf("PlaceInitrd(%s) with the %d MiB the error asked for = %v, want nil", name, need, err)
				}
			}
		}
	}
}

func TestPlaceInitrdMessage(t *testing.T) {
	mem := newRAM(t, 32<<20)
	k := &Kernel{End: 24 << 20, Header: DefaultSetupHeader()}
	_, err := PlaceInitrd(mem, k, 40<<20)
	want := "initrd of 40 MiB does not fit below 0x2000000 with 32 MiB of RAM: give at least 64 MiB"
	if err == nil || err.Error() != want {
		t.Errorf("PlaceInitrd(40 MiB in 32 MiB) = %v, want %q", err, want)
	}
}

func TestLoadInitrd(t *testing.T) {
	mem := newRAM(t, 64<<20)
	k := &Kernel{End: 24 << 20, Header: DefaultSetupHeader()}
	data := []byte("070701 cpio archive")
	rd, err := LoadInitrd(mem, k, data)
	if err != nil {
		t.Fatalf("LoadInitrd = %v", err)
	}
	if want := memory.GuestAddr(64<<20 - PageSize); rd.Addr != want || rd.Size != uint64(len(data)) {
		t.Errorf("LoadInitrd = %+v, want addr %v size %d", rd, want, len(data))
	}
	got := make([]byte, len(data))
	if err := mem.ReadAt(got, rd.Addr); err != nil || string(got) != string(data) {
		t.Errorf("guest bytes at %v = %q, %v, want %q", rd.Addr, got, err, data)
	}
}
