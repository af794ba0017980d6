package boot

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update", false, "rewrite the fuzz seed corpora under testdata/fuzz")

func TestParseBzImage(t *testing.T) {
	f := validBz()
	img := f.build()
	bz, err := ParseBzImage(img)
	if err != nil {
		t.Fatalf("ParseBzImage(valid) = %v, want nil", err)
	}
	h := bz.Header
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"SetupSize", bz.SetupSize, 28 * 512},
		{"len(Kernel)", uint64(len(bz.Kernel)), uint64(f.pmSize)},
		{"Version", uint64(h.Version), 0x020F},
		{"KernelAlignment", uint64(h.KernelAlignment), 2 << 20},
		{"PrefAddress", h.PrefAddress, 16 << 20},
		{"InitSize", uint64(h.InitSize), 8 << 20},
		{"CmdlineSize", uint64(h.CmdlineSize), 2048},
		{"InitrdAddrMax", uint64(h.InitrdAddrMax), 0x7fff_ffff},
		{"PayloadOffset", uint64(h.PayloadOffset), 0x100},
		{"PayloadLength", uint64(h.PayloadLength), 5},
		{"XLoadFlags", uint64(h.XLoadFlags), uint64(XLFKernel64 | XLFCanBeLoadedAbove4G)},
		{"len(Raw)", uint64(len(h.Raw)), 0x26c - 0x1f1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("ParseBzImage(valid).%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
	if !h.Relocatable {
		t.Errorf("ParseBzImage(valid).Relocatable = false, want true")
	}
	p, err := bz.Payload()
	if err != nil || string(p) != string(f.payload) {
		t.Errorf("Payload() = % x, %v, want % x, nil", p, err, f.payload)
	}
}

func TestParseBzImageSetupSectsZero(t *testing.T) {
	f := validBz()
	f.setupSects = 0
	bz, err := ParseBzImage(f.build())
	if err != nil {
		t.Fatalf("ParseBzImage(setup_sects=0) = %v", err)
	}
	if bz.SetupSize != 5*512 {
		t.Errorf("ParseBzImage(setup_sects=0).SetupSize = %d, want %d", bz.SetupSize, 5*512)
	}
}

func TestParseBzImageErrors(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name    string
		edit    func(b []byte) []byte
		wantErr string
	}{
		{"empty", func(b []byte) []byte { return nil }, "too short"},
		{"short", func(b []byte) []byte { return b[:0x205] }, "too short"},
		{"boot flag", func(b []byte) []byte { b[offBootFlag] = 0; return b }, "boot_flag"},
		{"magic", func(b []byte) []byte { copy(b[offHeaderMagic:], "HdrX"); return b }, `want "HdrS"`},
		{"old protocol", func(b []byte) []byte { le.PutUint16(b[offVersion:], 0x020A); return b }, "2.10, want 2.12"},
		{"no 64-bit entry", func(b []byte) []byte { le.PutUint16(b[offXLoadFlags:], 0); return b }, "XLF_KERNEL_64"},
		{"not loaded high", func(b []byte) []byte { b[offLoadFlags] = 0; return b }, "LOADED_HIGH"},
		{"alignment 0", func(b []byte) []byte { le.PutUint32(b[offKernelAlignment:], 0); return b }, "power of two"},
		{"alignment 3", func(b []byte) []byte { le.PutUint32(b[offKernelAlignment:], 3); return b }, "power of two"},
		{"short header", func(b []byte) []byte { b[offJump+1] = 0x20; return b }, "before 0x268"},
		{"header past file", func(b []byte) []byte { b[offJump+1] = 0xff; return b[:0x280] }, "past the end"},
		{"setup past file", func(b []byte) []byte { b[offSetupSects] = 200; return b }, "setup_sects 200"},
		{"payload past file", func(b []byte) []byte { le.PutUint32(b[offPayloadLength:], 0xffff_ffff); return b }, "payload_offset"},
		{"payload offset huge", func(b []byte) []byte { le.PutUint32(b[offPayloadOffset:], 0xffff_fff0); return b }, "payload_offset"},
		{"truncated", func(b []byte) []byte { return b[:28*512+0x100] }, "payload_offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBzImage(tt.edit(validBz().build()))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBzImage(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseBzImage(%s) error %q spans lines, want one line", tt.name, err)
			}
		})
	}
}

func TestRuntimeStart(t *testing.T) {
	tests := []struct {
		reloc      bool
		pref, load uint64
		align      uint32
		want       uint64
	}{
		{true, 16 << 20, 1 << 20, 2 << 20, 16 << 20},
		{true, 16 << 20, 17 << 20, 2 << 20, 18 << 20},
		{true, 1 << 20, 1 << 20, 2 << 20, 2 << 20},
		{true, 0, 5 << 20, 16 << 20, 16 << 20},
		{false, 16 << 20, 1 << 20, 2 << 20, 16 << 20},
		{false, 0, 1 << 20, 2 << 20, 1 << 20},
	}
	for _, tt := range tests {
		h := SetupHeader{Relocatable: tt.reloc, PrefAddress: tt.pref, KernelAlignment: tt.align}
		got, ok := h.RuntimeStart(tt.load)
		if !ok || got != tt.want {
			t.Errorf("RuntimeStart(reloc=%v pref=%#x align=%#x, %#x) = %#x, %v, want %#x, true", tt.reloc, tt.pref, tt.align, tt.load, got, ok, tt.want)
		}
	}
	h := SetupHeader{Relocatable: true, KernelAlignment: 1 << 31}
	if got, ok := h.RuntimeStart(^uint64(0) - 5); ok {
		t.Errorf("RuntimeStart(near 2^64) = %#x, true, want false", got)
	}
}

// bzSeeds are the committed seeds of FuzzParseBzImage.
func bzSeeds() map[string][]byte {
	small := func() fakeBz {
		f := validBz()
		f.setupSects, f.pmSize = 4, 0x200
		return f
	}
	valid := small().build()
	old := small()
	old.version = 0x0206
	zero := small()
	zero.setupSects = 0
	short := append([]byte(nil), valid...)
	short[offJump+1] = 0x10
	hugePayload := append([]byte(nil), valid...)
	binary.LittleEndian.PutUint32(hugePayload[offPayloadOffset:], 0xffff_ffff)
	return map[string][]byte{
		"valid":          valid,
		"setup_sects_0":  zero.build(),
		"old_protocol":   old.build(),
		"truncated":      valid[:0x400],
		"header_only":    valid[:0x26c],
		"short_header":   short,
		"payload_offset": hugePayload,
		"empty":          {},
	}
}

func FuzzParseBzImage(f *testing.F) {
	for _, b := range bzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, image []byte) {
		bz, err := ParseBzImage(image)
		if err != nil {
			return
		}
		if bz.SetupSize+uint64(len(bz.Kernel)) != uint64(len(image)) {
			t.Errorf("SetupSize %d + len(Kernel) %d != len(image) %d", bz.SetupSize, len(bz.Kernel), len(image))
		}
		if p, err := bz.Payload(); err == nil && uint64(len(p)) != uint64(bz.Header.PayloadLength) {
			t.Errorf("len(Payload()) = %d, want %d", len(p), bz.Header.PayloadLength)
		}
		if n := len(bz.Header.KernelVersion); n > maxKernelVersion || strings.IndexByte(bz.Header.KernelVersion, 0) >= 0 {
			t.Errorf("KernelVersion is %d bytes with a NUL at %d, want at most %d and none", n, strings.IndexByte(bz.Header.KernelVersion, 0), maxKernelVersion)
		}
		if _, err := (&BootParams{Header: bz.Header}).Marshal(); err != nil {
			t.Errorf("Marshal(parsed header) = %v", err)
		}
	})
}

// TestFuzzSeeds checks (or with -update, rewrites) the committed seed files.
func TestFuzzSeeds(t *testing.T) {
	for fuzz, seeds := range map[string]map[string][]byte{
		"FuzzParseBzImage":      bzSeeds(),
		"FuzzDecompressPayload": payloadSeeds(t),
	} {
		for name, b := range seeds {
			path := filepath.Join("testdata", "fuzz", fuzz, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if *updateSeeds {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("seed %s: %v (run go test ./boot -run TestFuzzSeeds -update)", path, err)
				continue
			}
			if string(got) != want {
				t.Errorf("seed %s is stale (run go test ./boot -run TestFuzzSeeds -update)", path)
			}
		}
	}
}

func TestParseBzImageKernelVersion(t *testing.T) {
	const debian = "6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3"
	le := binary.LittleEndian
	tests := []struct {
		name string
		edit func(b []byte)
		want string
	}{
		{"Linux's string", func(b []byte) {}, debian},
		{"no pointer", func(b []byte) { le.PutUint16(b[offKernelVersion:], 0) }, ""},
		{"pointer past the setup code", func(b []byte) { le.PutUint16(b[offKernelVersion:], 28*512-0x200) }, ""},
		{"no NUL before the setup code ends", func(b []byte) { le.PutUint16(b[offKernelVersion:], 28*512-0x200-3); copy(b[28*512-3:], "abc") }, "abc"},
		{"capped", func(b []byte) {
			for i := 0x400; i < 0x400+1000; i++ {
				b[i] = 'x'
			}
		}, strings.Repeat("x", maxKernelVersion)},
	}
	for _, tt := range tests {
		f := validBz()
		f.kernelVersion = debian
		b := f.build()
		tt.edit(b)
		bz, err := ParseBzImage(b)
		if err != nil {
			t.Fatalf("ParseBzImage(%s) = %v", tt.name, err)
		}
		if bz.Header.KernelVersion != tt.want {
			t.Errorf("ParseBzImage(%s).Header.KernelVersion = %q, want %q", tt.name, bz.Header.KernelVersion, tt.want)
		}
	}
}
