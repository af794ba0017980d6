package testguest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// setupHeader is what a loader reads back from a bzImage (boot.rst).
type setupHeader struct {
	SetupSects     uint8
	BootFlag       uint16
	Magic          string
	Version        uint16
	Loadflags      uint8
	Code32Start    uint32
	InitrdAddrMax  uint32
	KernelAlign    uint32
	Relocatable    uint8
	Xloadflags     uint16
	CmdlineSize    uint32
	PayloadOffset  uint32
	PayloadLength  uint32
	PrefAddress    uint64
	InitSize       uint32
	Syssize        uint32
	KernelVersion  string
	ProtectedStart int // file offset of the protected-mode part
}

func parseSetupHeader(t *testing.T, img []byte) setupHeader {
	t.Helper()
	if len(img) < 0x400 {
		t.Fatalf("bzImage is %d bytes, want at least 0x400", len(img))
	}
	le := binary.LittleEndian
	h := setupHeader{
		SetupSects:    img[hdrSetupSects],
		BootFlag:      le.Uint16(img[hdrBootFlag:]),
		Magic:         string(img[hdrMagic : hdrMagic+4]),
		Version:       le.Uint16(img[hdrVersion:]),
		Loadflags:     img[hdrLoadflags],
		Code32Start:   le.Uint32(img[hdrCode32Start:]),
		InitrdAddrMax: le.Uint32(img[hdrInitrdAddrMax:]),
		KernelAlign:   le.Uint32(img[hdrKernelAlign:]),
		Relocatable:   img[hdrRelocatable],
		Xloadflags:    le.Uint16(img[hdrXloadflags:]),
		CmdlineSize:   le.Uint32(img[hdrCmdlineSize:]),
		PayloadOffset: le.Uint32(img[hdrPayloadOffset:]),
		PayloadLength: le.Uint32(img[hdrPayloadLength:]),
		PrefAddress:   le.Uint64(img[hdrPrefAddress:]),
		InitSize:      le.Uint32(img[hdrInitSize:]),
		Syssize:       le.Uint32(img[hdrSyssize:]),
	}
	v := img[0x200+int(le.Uint16(img[hdrKernelVersion:])):]
	h.KernelVersion = string(v[:bytes.IndexByte(v, 0)])
	h.ProtectedStart = (int(h.SetupSects) + 1) * 512
	return h
}

// checkHeader compares the fixed fields with the contract (README.md).
func checkHeader(t *testing.T, h setupHeader, fileSize int) {
	t.Helper()
	tests := []struct {
		field     string
		got, want any
	}{
		{"boot_flag", h.BootFlag, uint16(0xaa55)},
		{"header", h.Magic, "HdrS"},
		{"version", h.Version, uint16(0x020f)},
		{"setup_sects", h.SetupSects, uint8(1)},
		{"loadflags", h.Loadflags, uint8(0x01)},
		{"code32_start", h.Code32Start, uint32(0x100000)},
		{"initrd_addr_max", h.InitrdAddrMax, uint32(0x7fffffff)},
		{"kernel_alignment", h.KernelAlign, uint32(0x200000)},
		{"relocatable_kernel", h.Relocatable, uint8(0)},
		{"xloadflags", h.Xloadflags, uint16(3)},
		{"cmdline_size", h.CmdlineSize, uint32(4095)},
		{"pref_address", h.PrefAddress, uint64(0x100000)},
		{"syssize*16", int(h.Syssize) * 16, fileSize - h.ProtectedStart},
		{"kernel_version", h.KernelVersion, bzImageVersionStr},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("header %s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
}

func TestBzImageLayout(t *testing.T) {
	raw := bytes.Repeat([]byte{0x90}, 1000)
	payload := []byte("compressed bytes\x10\x00\x00\x00")
	img, err := BzImage(raw, 0x9000, payload)
	if err != nil {
		t.Fatal(err)
	}
	h := parseSetupHeader(t, img)
	checkHeader(t, h, len(img))
	pm := img[h.ProtectedStart:]
	if got := pm[Entry64Off : Entry64Off+len(raw)]; !bytes.Equal(got, raw) {
		t.Errorf("protected-mode part at 0x200 = % x..., want the raw guest", got[:8])
	}
	if got := pm[h.PayloadOffset : h.PayloadOffset+h.PayloadLength]; !bytes.Equal(got, payload) {
		t.Errorf("payload = %q, want %q", got, payload)
	}
	if h.InitSize != 0x9000 {
		t.Errorf("init_size = %#x, want memSize 0x9000 (it is larger than the file)", h.InitSize)
	}
}

// TestBuiltBzImages reads every built bzImage back: the header, the raw
// guest at 0x200, and a payload that decompresses to guest.elf.
func TestBuiltBzImages(t *testing.T) {
	g := buildForTest(t)
	guestELF := readFile(t, g.ELF)
	raw := readFile(t, filepath.Join(g.Dir, "guest-raw.bin"))
	end, err := symbol(filepath.Join(g.Dir, "guest-raw.elf"), "_end")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, g.BzImage), readFile(t, g.BzImages[Gzip])) {
		t.Errorf("guest.bzImage differs from guest-gzip.bzImage")
	}
	for _, c := range Compressions {
		t.Run(string(c), func(t *testing.T) {
			img := readFile(t, g.BzImages[c])
			h := parseSetupHeader(t, img)
			checkHeader(t, h, len(img))
			pm := img[h.ProtectedStart:]
			if !bytes.Equal(pm[Entry64Off:Entry64Off+len(raw)], raw) {
				t.Errorf("protected-mode part at 0x200 is not guest-raw.bin")
			}
			if uint64(h.InitSize) < end-LoadAddr || int(h.InitSize) < len(pm) {
				t.Errorf("init_size = %#x, want >= %#x (image, bss, stacks) and >= %#x (file)", h.InitSize, end-LoadAddr, len(pm))
			}
			if int(h.PayloadOffset+h.PayloadLength) > len(pm) || h.PayloadOffset < Entry64Off+uint32(len(raw)) {
				t.Fatalf("payload [%#x, +%#x) is not after the raw guest inside the protected-mode part (%#x bytes)", h.PayloadOffset, h.PayloadLength, len(pm))
			}
			payload := pm[h.PayloadOffset : h.PayloadOffset+h.PayloadLength]
			size := binary.LittleEndian.Uint32(payload[len(payload)-4:])
			if int(size) != len(guestELF) {
				t.Errorf("payload size trailer = %d, want len(guest.elf) = %d", size, len(guestELF))
			}
			got := decompress(t, c, payload[:len(payload)-4])
			if !bytes.Equal(got, guestELF) {
				t.Errorf("decompressed payload (%d bytes) is not guest.elf (%d bytes)", len(got), len(guestELF))
			}
		})
	}
}

func decompress(t *testing.T, c Compression, b []byte) []byte {
	t.Helper()
	var r io.Reader
	var err error
	switch c {
	case Gzip:
		r, err = gzip.NewReader(bytes.NewReader(b))
	case LZ4:
		r = lz4.NewReader(bytes.NewReader(b)) // reads the legacy frame too
	case XZ:
		r, err = xz.NewReader(bytes.NewReader(b))
	case Zstd:
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(b))
		if err == nil {
			defer d.Close()
			r = d
		}
	}
	if err != nil {
		t.Fatalf("%s reader: %v", c, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s decompress: %v", c, err)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
