package machine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/memory"
)

// guests builds (or finds cached) the test guests.
func guests(t *testing.T) testguest.Guests {
	t.Helper()
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatalf("building the test guests: %v", err)
	}
	return g
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ram(t *testing.T, size uint64) *memory.Memory {
	t.Helper()
	m, err := memory.FromRegions(memory.Region{Start: 0, Host: make([]byte, size)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestLoadKernelPaths loads each test-guest image by each boot path, with
// no KVM: the entry point, the path taken and the zero page are checked.
func TestLoadKernelPaths(t *testing.T) {
	g := guests(t)
	gz := readFile(t, g.BzImages[testguest.Gzip])
	tests := []struct {
		name     string
		image    []byte
		boot     BootPath
		wantPath string
	}{
		{"elf", readFile(t, g.ELF), BootAuto, "elf"},
		{"gzip auto", gz, BootAuto, "fast"},
		{"gzip fast", gz, BootFast, "fast"},
		{"gzip bzimage", gz, BootBzImage, "bzimage"},
		{"lz4", readFile(t, g.BzImages[testguest.LZ4]), BootFast, "fast"},
		{"xz", readFile(t, g.BzImages[testguest.XZ]), BootFast, "fast"},
		{"zstd", readFile(t, g.BzImages[testguest.Zstd]), BootFast, "fast"},
		{"unknown payload falls back", corruptPayload(t, gz), BootAuto, "bzimage"},
	}
	initrd := bytes.Repeat([]byte("initrd!"), 1000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := ram(t, 64<<20)
			c := &Config{Kernel: tt.image, Initrd: initrd, Cmdline: "mode=check", MemSize: 64 << 20, CPUs: 1, Boot: tt.boot, CacheDir: t.TempDir()}
			l, err := loadKernel(mem, c, testHost, nil)
			if err != nil {
				t.Fatalf("loadKernel(%s) = %v", tt.name, err)
			}
			if l.Path != tt.wantPath {
				t.Errorf("loadKernel(%s) took the %s path, want %s", tt.name, l.Path, tt.wantPath)
			}
			if (l.Fallback != nil) != (tt.boot == BootAuto && tt.wantPath == "bzimage") {
				t.Errorf("loadKernel(%s) fallback = %v, want one only when auto falls back", tt.name, l.Fallback)
			}
			wantEntry := uint64(testguest.LoadAddr + testguest.Entry64Off)
			if tt.wantPath != "bzimage" {
				wantEntry = elfEntry(t, readFile(t, g.ELF))
			}
			if l.Entry.RIP != wantEntry || l.Entry.RSI != uint64(boot.ZeroPageAddr) {
				t.Errorf("entry rip=%#x rsi=%#x, want rip=%#x rsi=%v", l.Entry.RIP, l.Entry.RSI, wantEntry, boot.ZeroPageAddr)
			}
			zp := make([]byte, boot.ZeroPageSize)
			if err := mem.ReadAt(zp, boot.ZeroPageAddr); err != nil {
				t.Fatal(err)
			}
			if got := binary.LittleEndian.Uint32(zp[0x21c:]); got != uint32(len(initrd)) {
				t.Errorf("zero page ramdisk_size = %d, want %d", got, len(initrd))
			}
			got := make([]byte, len(initrd))
			if err := mem.ReadAt(got, memory.GuestAddr(binary.LittleEndian.Uint32(zp[0x218:]))); err != nil || !bytes.Equal(got, initrd) {
				t.Errorf("initrd bytes at ramdisk_image differ from the file (%v)", err)
			}
		})
	}
}

func elfEntry(t *testing.T, elf []byte) uint64 {
	t.Helper()
	return binary.LittleEndian.Uint64(elf[24:])
}

// TestLoadKernelBadInput checks that bad images and sizes give one-line
// errors that say what is wrong.
func TestLoadKernelBadInput(t *testing.T) {
	g := guests(t)
	bz := readFile(t, g.BzImage)
	wrongMagic := append([]byte(nil), bz...)
	copy(wrongMagic[0x202:], "XXXX")
	tests := []struct {
		name    string
		image   []byte
		initrd  []byte
		mem     uint64
		boot    BootPath
		wantErr string
	}{
		{"truncated", bz[:0x300], nil, 64 << 20, BootAuto, "bzImage"},
		{"wrong magic", wrongMagic, nil, 64 << 20, BootAuto, "HdrS"},
		{"initrd larger than RAM", bz, make([]byte, 80<<20), 64 << 20, BootAuto, "MiB"},
		{"not a kernel", []byte("hello, world"), nil, 64 << 20, BootAuto, "bzImage"},
		{"fast path asked for an uncompressed payload", corruptPayload(t, bz), nil, 64 << 20, BootFast, "-boot bzimage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Kernel: tt.image, Initrd: tt.initrd, MemSize: tt.mem, CPUs: 1, Boot: tt.boot}
			_, err := loadKernel(ram(t, tt.mem), c, testHost, nil)
			if err == nil {
				t.Fatalf("loadKernel(%s) succeeded, want an error", tt.name)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantErr) || strings.Contains(msg, "\n") {
				t.Errorf("loadKernel(%s) = %q, want one line containing %q", tt.name, msg, tt.wantErr)
			}
		})
	}
}

// corruptPayload overwrites the bzImage's payload magic so the fast path
// cannot recognize it.
func corruptPayload(t *testing.T, bz []byte) []byte {
	t.Helper()
	b, err := boot.ParseBzImage(bz)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Payload()
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), bz...)
	off := bytes.Index(out, p[:64])
	if off < 0 {
		t.Fatal(errors.New("payload not found in image"))
	}
	copy(out[off:], "NOPE")
	return out
}

// testHost is this host's kind, as machine.New reads it.
var testHost = kvm.DetectHost(os.DirFS("/"))
