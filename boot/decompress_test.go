package boot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// fakeVmlinux is an ELF kernel of about n bytes: a 16 MiB physical segment
// of compressible text, as a small stand-in for a real vmlinux.
func fakeVmlinux(n int) []byte {
	var text bytes.Buffer
	for i := 0; text.Len() < n; i++ {
		text.WriteString("startup_64 kernel text ")
		text.WriteByte(byte(i))
	}
	return buildELF(16<<20, fakeSegment{vaddr: 0xffffffff81000000, paddr: 16 << 20, data: text.Bytes(), memsz: uint64(text.Len()) + 0x3000})
}

// sizeAppend adds Linux's 4-byte little-endian uncompressed-size trailer.
func sizeAppend(c []byte, n int) []byte {
	return binary.LittleEndian.AppendUint32(c, uint32(n))
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xzBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// lz4LegacyBytes builds a legacy lz4 frame with the library's block encoder.
func lz4LegacyBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	out := binary.LittleEndian.AppendUint32(nil, lz4LegacyMagic)
	for len(b) > 0 {
		chunk := b[:min(len(b), lz4LegacyBlockSize)]
		b = b[len(chunk):]
		dst := make([]byte, lz4.CompressBlockBound(len(chunk)))
		n, err := lz4.CompressBlock(chunk, dst, nil)
		if err != nil || n == 0 {
			t.Fatalf("lz4.CompressBlock = %d, %v", n, err)
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(n))
		out = append(out, dst[:n]...)
	}
	return out
}

func TestDecompressPayload(t *testing.T) {
	elf := fakeVmlinux(300 << 10)
	big := fakeVmlinux(9 << 20) // more than one 8 MiB lz4 block
	tests := []struct {
		name    string
		payload []byte
		want    []byte
	}{
		{"gzip", gzipBytes(t, elf), elf},
		{"gzip+size", sizeAppend(gzipBytes(t, elf), len(elf)), elf},
		{"xz", xzBytes(t, elf), elf},
		{"xz+size", sizeAppend(xzBytes(t, elf), len(elf)), elf},
		{"zstd", zstdBytes(t, elf), elf},
		{"zstd+size", sizeAppend(zstdBytes(t, elf), len(elf)), elf},
		{"lz4", lz4LegacyBytes(t, elf), elf},
		{"lz4+size", sizeAppend(lz4LegacyBytes(t, elf), len(elf)), elf},
		{"lz4 two blocks+size", sizeAppend(lz4LegacyBytes(t, big), len(big)), big},
		{"uncompressed", elf, elf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecompressPayload(tt.payload)
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("DecompressPayload(%s) = %d bytes, %v, want %d bytes, nil", tt.name, len(got), err, len(tt.want))
			}
		})
	}
}

func TestDecompressPayloadLZ4CLI(t *testing.T) {
	if _, err := exec.LookPath("lz4"); err != nil {
		t.Skip("no lz4 command to make a legacy frame the way Linux's build does (apt-get install lz4)")
	}
	elf := fakeVmlinux(9 << 20)
	in := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(in, elf, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := exec.Command("lz4", "-l", "-9", "-c", in).Output()
	if err != nil {
		t.Fatalf("lz4 -l: %v", err)
	}
	got, err := DecompressPayload(sizeAppend(c, len(elf)))
	if err != nil || !bytes.Equal(got, elf) {
		t.Errorf("DecompressPayload(lz4 -l output) = %d bytes, %v, want %d bytes, nil", len(got), err, len(elf))
	}
}

func TestDecompressPayloadErrors(t *testing.T) {
	elf := fakeVmlinux(64 << 10)
	gz := gzipBytes(t, elf)
	tests := []struct {
		name    string
		payload []byte
		wantErr string
	}{
		{"empty", nil, "no known compression magic"},
		{"garbage", []byte("hello world"), "no known compression magic"},
		{"bzip2", []byte("BZh91AY&SY"), "bzip2"},
		{"lzma", []byte{0x5d, 0, 0, 0x80, 0}, "lzma"},
		{"gzip not ELF", gzipBytes(t, []byte("not a kernel")), "not an ELF"},
		{"gzip truncated", gz[:len(gz)/2], "gzip"},
		{"xz truncated", xzBytes(t, elf)[:20], "xz"},
		{"zstd truncated", zstdBytes(t, elf)[:20], "zstd"},
		{"lz4 bad block size", []byte{0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0xff, 0x7f, 1, 2}, "lz4"},
		{"lz4 no blocks", []byte{0x02, 0x21, 0x4c, 0x18}, "no blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecompressPayload(tt.payload)
			if !errors.Is(err, ErrNoFastPath) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecompressPayload(%s) = %v, want an ErrNoFastPath error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestDecompressBzImage(t *testing.T) {
	elf := fakeVmlinux(100 << 10)
	f := validBz()
	f.payload = sizeAppend(gzipBytes(t, elf), len(elf))
	got, err := Decompress(f.build())
	if err != nil || !bytes.Equal(got, elf) {
		t.Errorf("Decompress(bzImage with gzip payload) = %d bytes, %v, want %d bytes, nil", len(got), err, len(elf))
	}
	f.payload = nil
	if _, err := Decompress(f.build()); !errors.Is(err, ErrNoFastPath) {
		t.Errorf("Decompress(bzImage without payload) = %v, want ErrNoFastPath", err)
	}
	if _, err := Decompress([]byte("nonsense")); !errors.Is(err, ErrNoFastPath) {
		t.Errorf("Decompress(nonsense) = %v, want ErrNoFastPath", err)
	}
}

// payloadSeeds are the committed seeds of FuzzDecompressPayload.
func payloadSeeds(t testing.TB) map[string][]byte {
	elf := buildELF(16<<20, fakeSegment{paddr: 16 << 20, data: []byte("kernel kernel kernel")})
	return map[string][]byte{
		"gzip":                sizeAppend(gzipBytes(t, elf), len(elf)),
		"xz":                  sizeAppend(xzBytes(t, elf), len(elf)),
		"zstd":                sizeAppend(zstdBytes(t, elf), len(elf)),
		"lz4":                 sizeAppend(lz4LegacyBytes(t, elf), len(elf)),
		"elf":                 elf,
		"bzip2":               []byte("BZh91AY&SY"),
		"lz4_truncated_block": {0x02, 0x21, 0x4c, 0x18, 0x10, 0, 0, 0, 1},
		"xz_header_only":      xzBytes(t, elf)[:13],
		"xz_bcj":              sizeAppend(xzStreamOf(t, [][]byte{elf}, true, 0), len(elf)),
		"xz_bcj_two_blocks":   xzStreamOf(t, [][]byte{elf[:40], elf[40:]}, true, 0x1000),
	}
}

func FuzzDecompressPayload(f *testing.F) {
	for _, b := range payloadSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := DecompressPayload(payload)
		if err != nil {
			if !errors.Is(err, ErrNoFastPath) {
				t.Errorf("DecompressPayload error %v does not wrap ErrNoFastPath", err)
			}
			return
		}
		if len(out) > MaxDecompressed || !bytes.HasPrefix(out, []byte("\x7fELF")) {
			t.Errorf("DecompressPayload returned %d bytes starting % x, want an ELF under the cap", len(out), out[:min(len(out), 4)])
		}
	})
}
