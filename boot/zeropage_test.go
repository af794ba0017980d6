package boot

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

func TestE820Map(t *testing.T) {
	ecam := E820Entry{Addr: uint64(PCIeECAMStart), Size: PCIeECAMSize, Type: E820Reserved}
	tests := []struct {
		name  string
		ram   uint64
		extra []E820Entry
		want  []E820Entry
	}{
		{"64 MiB", 64 << 20, nil, []E820Entry{
			{0, 0x9fc00, E820RAM},
			{0x9fc00, 0x100000 - 0x9fc00, E820Reserved},
			{0x100000, 63 << 20, E820RAM},
		}},
		{"5 GiB with ECAM", 5 << 30, []E820Entry{ecam}, []E820Entry{
			{0, 0x9fc00, E820RAM},
			{0x9fc00, 0x100000 - 0x9fc00, E820Reserved},
			{0x100000, 3<<30 - 1<<20, E820RAM},
			ecam,
			{4 << 30, 2 << 30, E820RAM},
		}},
	}
	for _, tt := range tests {
		got, err := E820Map(newRAM(t, tt.ram), tt.extra...)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("E820Map(%s) = %v, %v, want %v, nil", tt.name, got, err, tt.want)
		}
	}
}

func TestE820MapErrors(t *testing.T) {
	mem := newRAM(t, 64<<20)
	many := make([]E820Entry, E820MaxEntries)
	for i := range many {
		many[i] = E820Entry{Addr: 1<<32 + uint64(i)<<12, Size: 1 << 12, Type: E820Reserved}
	}
	tests := []struct {
		name    string
		extra   []E820Entry
		wantErr string
	}{
		{"over RAM", []E820Entry{{Addr: 1 << 20, Size: 1 << 20, Type: E820Reserved}}, "overlaps"},
		{"empty", []E820Entry{{Addr: 1 << 32, Type: E820Reserved}}, "empty"},
		{"wraps", []E820Entry{{Addr: ^uint64(0), Size: 2, Type: E820Reserved}}, "wraps"},
		{"too many", many, "at most 128"},
	}
	for _, tt := range tests {
		if _, err := E820Map(mem, tt.extra...); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("E820Map(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

// decodedZeroPage is what a test reads back from a zero page.
type decodedZeroPage struct {
	bootFlag, version, heapEnd                      uint16
	magic, cmdlinePtr, ramdiskImage, ramdiskSize    uint32
	extCmdline, extRamdiskImage, cmdlineSize, align uint32
	loader, loadFlags                               uint8
	rsdp                                            uint64
	e820                                            []E820Entry
}

func decodeZeroPage(b []byte) decodedZeroPage {
	le := binary.LittleEndian
	d := decodedZeroPage{
		bootFlag:        le.Uint16(b[0x1FE:]),
		version:         le.Uint16(b[0x206:]),
		heapEnd:         le.Uint16(b[0x224:]),
		magic:           le.Uint32(b[0x202:]),
		cmdlinePtr:      le.Uint32(b[0x228:]),
		ramdiskImage:    le.Uint32(b[0x218:]),
		ramdiskSize:     le.Uint32(b[0x21C:]),
		extCmdline:      le.Uint32(b[0x0C8:]),
		extRamdiskImage: le.Uint32(b[0x0C0:]),
		cmdlineSize:     le.Uint32(b[0x238:]),
		align:           le.Uint32(b[0x230:]),
		loader:          b[0x210],
		loadFlags:       b[0x211],
		rsdp:            le.Uint64(b[0x070:]),
	}
	for i := range int(b[0x1E8]) {
		e := b[0x2D0+20*i:]
		d.e820 = append(d.e820, E820Entry{Addr: le.Uint64(e), Size: le.Uint64(e[8:]), Type: E820Type(le.Uint32(e[16:]))})
	}
	return d
}

func TestWriteBootParams(t *testing.T) {
	mem := newRAM(t, 64<<20)
	bz, err := ParseBzImage(validBz().build())
	if err != nil {
		t.Fatal(err)
	}
	e820, err := E820Map(mem)
	if err != nil {
		t.Fatal(err)
	}
	p := &BootParams{
		Header:      bz.Header,
		Cmdline:     "console=ttyS0 panic=-1",
		CmdlineAddr: CmdlineAddr,
		InitrdAddr:  0x3f00000,
		InitrdSize:  0x12345,
		E820:        e820,
		ACPIRSDP:    0xe0000,
	}
	if err := WriteBootParams(mem, p); err != nil {
		t.Fatalf("WriteBootParams = %v", err)
	}
	zp := make([]byte, ZeroPageSize)
	if err := mem.ReadAt(zp, ZeroPageAddr); err != nil {
		t.Fatal(err)
	}
	got := decodeZeroPage(zp)
	want := decodedZeroPage{
		bootFlag: 0xAA55, version: 0x020F, heapEnd: 0xfe00,
		magic: 0x53726448, cmdlinePtr: uint32(CmdlineAddr), ramdiskImage: 0x3f00000, ramdiskSize: 0x12345,
		cmdlineSize: 2048, align: 2 << 20,
		loader: 0xFF, loadFlags: LoadedHigh | CanUseHeap,
		rsdp: 0xe0000,
		e820: e820,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zero page decodes to %+v, want %+v", got, want)
	}
	// Bytes of the image's header that BootParams does not name survive.
	img := validBz().build()
	for off := hdrStart; off < 0x26c; off++ {
		switch {
		case off >= offTypeOfLoader && off < offTypeOfLoader+2, off >= offRamdiskImage && off < offRamdiskImage+8,
			off >= offHeapEndPtr && off < offHeapEndPtr+2, off >= offCmdLinePtr && off < offCmdLinePtr+4:
			continue // loader-written fields
		}
		if zp[off] != img[off] {
			t.Errorf("zero page byte %#x = %#x, want the image's %#x", off, zp[off], img[off])
		}
	}
	cl := make([]byte, len(p.Cmdline)+1)
	if err := mem.ReadAt(cl, CmdlineAddr); err != nil || string(cl) != p.Cmdline+"\x00" {
		t.Errorf("command line in guest = %q, %v, want %q", cl, err, p.Cmdline+"\x00")
	}
}

func TestBootParamsHighAddresses(t *testing.T) {
	p := &BootParams{Header: DefaultSetupHeader(), CmdlineAddr: 0x1_2345_6000, InitrdAddr: 0x2_0000_1000, InitrdSize: 10}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d := decodeZeroPage(b)
	if d.cmdlinePtr != 0x2345_6000 || d.extCmdline != 1 || d.ramdiskImage != 0x1000 || d.extRamdiskImage != 2 {
		t.Errorf("Marshal(high addresses) = cmd_line_ptr %#x ext %#x ramdisk_image %#x ext %#x, want 0x23456000 1 0x1000 2",
			d.cmdlinePtr, d.extCmdline, d.ramdiskImage, d.extRamdiskImage)
	}
}

func TestBootParamsErrors(t *testing.T) {
	small := DefaultSetupHeader()
	small.CmdlineSize = 8
	tests := []struct {
		name    string
		p       BootParams
		wantErr string
	}{
		{"cmdline over cmdline_size", BootParams{Header: small, Cmdline: "123456789"}, "at most 8 (cmdline_size)"},
		{"cmdline over area", BootParams{Header: SetupHeader{CmdlineSize: 1 << 20}, Cmdline: strings.Repeat("x", CmdlineMax)}, "shorten it"},
		{"initrd over 4 GiB", BootParams{Header: small, InitrdSize: 1 << 32}, "32-bit"},
		{"e820 too long", BootParams{Header: small, E820: make([]E820Entry, 129)}, "at most 128"},
	}
	for _, tt := range tests {
		if _, err := tt.p.Marshal(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Marshal(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
	// Exactly cmdline_size bytes is allowed.
	p := BootParams{Header: small, Cmdline: "12345678"}
	if _, err := p.Marshal(); err != nil {
		t.Errorf("Marshal(cmdline of exactly cmdline_size) = %v, want nil", err)
	}
	if err := WriteBootParams(newRAM(t, 4<<20), &BootParams{Header: small, CmdlineAddr: 1 << 40}); err == nil {
		t.Errorf("WriteBootParams(cmdline outside RAM) = nil, want an error")
	}
}
