package boot

import (
	"testing"
)

// TestBootFlow runs both paths the machine package takes, normal and fast,
// from image bytes to an entry state, and checks they agree on the zero page.
func TestBootFlow(t *testing.T) {
	vmlinux := fakeVmlinux(200 << 10)
	f := validBz()
	f.payload = sizeAppend(lz4LegacyBytes(t, vmlinux), len(vmlinux))
	img := f.build()
	initrd := []byte("070701initrd")

	for _, fast := range []bool{false, true} {
		mem := newRAM(t, 128<<20)
		var k *Kernel
		var err error
		if fast {
			c, derr := DecompressCached(t.TempDir(), img)
			if derr != nil {
				t.Fatalf("DecompressCached = %v", derr)
			}
			if k, err = LoadELF(mem, c.ELF); err != nil {
				t.Fatalf("LoadELF = %v", err)
			}
			bz, perr := ParseBzImage(img)
			if perr != nil {
				t.Fatal(perr)
			}
			k.Header = bz.Header // the fast path keeps the bzImage's header
		} else if k, err = LoadBzImage(mem, img); err != nil {
			t.Fatalf("LoadBzImage = %v", err)
		}
		rd, err := LoadInitrd(mem, k, initrd)
		if err != nil {
			t.Fatalf("LoadInitrd(fast=%v) = %v", fast, err)
		}
		e820, err := E820Map(mem, E820Entry{Addr: uint64(PCIeECAMStart), Size: PCIeECAMSize, Type: E820Reserved})
		if err != nil {
			t.Fatal(err)
		}
		p := &BootParams{Header: k.Header, Cmdline: "console=ttyS0", CmdlineAddr: CmdlineAddr, InitrdAddr: rd.Addr, InitrdSize: rd.Size, E820: e820}
		if err := WriteBootParams(mem, p); err != nil {
			t.Fatalf("WriteBootParams(fast=%v) = %v", fast, err)
		}
		st, err := LongModeEntry(mem, uint64(k.Entry), ZeroPageAddr)
		if err != nil {
			t.Fatalf("LongModeEntry(fast=%v) = %v", fast, err)
		}
		wantRIP := uint64(16<<20 + 0x200) // bzImage: load address + 0x200
		if fast {
			wantRIP = 16 << 20 // vmlinux: e_entry
		}
		if st.RIP != wantRIP {
			t.Errorf("fast=%v: RIP = %#x, want %#x", fast, st.RIP, wantRIP)
		}
		zp := make([]byte, ZeroPageSize)
		if err := mem.ReadAt(zp, ZeroPageAddr); err != nil {
			t.Fatal(err)
		}
		d := decodeZeroPage(zp)
		if d.ramdiskImage != uint32(rd.Addr) || d.cmdlinePtr != uint32(CmdlineAddr) || len(d.e820) != 4 || uint64(rd.Addr) < uint64(k.End) {
			t.Errorf("fast=%v: zero page ramdisk %#x cmdline %#x e820 %d entries, kernel end %v; want ramdisk %v above the kernel, cmdline %v, 4 entries",
				fast, d.ramdiskImage, d.cmdlinePtr, len(d.e820), k.End, rd.Addr, CmdlineAddr)
		}
	}
}
