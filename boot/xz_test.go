package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz/lzma"

	"github.com/govmm/govmm/images/imagesenv"
)

// xzVarintBytes encodes a multibyte integer (the format's 1.2).
func xzVarintBytes(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// xzStreamOf builds an .xz stream (sections 2-4) with one block per chunk:
// BCJ-encoded by this package's encoder when x86 is set (start offset
// start; a 4-byte property when it is not 0), LZMA2 by ulikunitz's raw
// writer with a 1 MiB dictionary, and a CRC32 check. It stands in for xz
// where the tests need exact control or determinism (committed seeds);
// TestUnxzCLI checks against xz itself.
func xzStreamOf(t testing.TB, chunks [][]byte, x86 bool, start uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	s := append([]byte(nil), xzMagic...)
	s = append(s, 0, xzCheckCRC32)
	s = le.AppendUint32(s, crc32.ChecksumIEEE([]byte{0, xzCheckCRC32}))
	var index []byte
	for _, c := range chunks {
		data := append([]byte(nil), c...)
		filters := []byte{xzFilterLZMA2, 1, 16} // 16: a 1 MiB dictionary (5.3.1)
		if x86 {
			encodeBCJX86(data, start)
			x := []byte{xzFilterX86, 0}
			if start != 0 {
				x = le.AppendUint32([]byte{xzFilterX86, 4}, start)
			}
			filters = append(x, filters...)
		}
		var comp bytes.Buffer
		w, err := lzma.Writer2Config{DictCap: 1 << 20}.NewWriter2(&comp)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		nf := byte(0)
		if x86 {
			nf = 1
		}
		h := append([]byte{0, nf}, filters...)
		for (len(h)+4)%4 != 0 {
			h = append(h, 0)
		}
		h[0] = byte((len(h)+4)/4 - 1)
		h = le.AppendUint32(h, crc32.ChecksumIEEE(h))
		block := append(h, comp.Bytes()...)
		unpadded := len(block) + 4
		for len(block)%4 != 0 {
			block = append(block, 0)
		}
		block = le.AppendUint32(block, crc32.ChecksumIEEE(c))
		s = append(s, block...)
		index = append(index, xzVarintBytes(uint64(unpadded))...)
		index = append(index, xzVarintBytes(uint64(len(c)))...)
	}
	idx := append([]byte{0}, xzVarintBytes(uint64(len(chunks)))...)
	idx = append(idx, index...)
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = le.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	s = append(s, idx...)
	foot := le.AppendUint32(nil, uint32(len(idx)/4-1))
	foot = append(foot, 0, xzCheckCRC32)
	s = le.AppendUint32(s, crc32.ChecksumIEEE(foot))
	s = append(s, foot...)
	return append(s, xzFooterMagic...)
}

// program is the start of this test binary: real x86-64 code, an ELF.
func program(t testing.TB, n int) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	return b[:min(n, len(b))]
}

// TestUnxzCLI decodes what xz itself writes, with Linux's options
// (scripts/xz_wrap.sh) and the variations a payload may have.
func TestUnxzCLI(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz command (apt-get install xz-utils)")
	}
	prog := program(t, 1<<20)
	tests := []struct {
		name string
		args []string
	}{
		{"Linux's kernel options", []string{"--check=crc32", "--x86", "--lzma2=dict=32MiB"}},
		{"no BCJ", []string{"--check=crc32", "--lzma2=preset=1"}},
		{"CRC64", []string{"--check=crc64", "--x86", "--lzma2=preset=1"}},
		{"SHA-256", []string{"--check=sha256", "--x86", "--lzma2=preset=1"}},
		{"no check", []string{"--check=none", "--x86", "--lzma2=preset=1"}},
		{"BCJ start offset", []string{"--check=crc32", "--x86=start=4096", "--lzma2=preset=1"}},
		{"several blocks", []string{"--check=crc32", "--block-size=300000", "--x86", "--lzma2=preset=1"}},
	}
	for _, tt := range tests {
		cmd := exec.Command("xz", append(tt.args, "-c")...)
		cmd.Stdin = bytes.NewReader(prog)
		c, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", tt.args, err)
		}
		for _, payload := range [][]byte{c, sizeAppend(c, len(prog))} {
			got, err := DecompressPayload(payload)
			if err != nil || !bytes.Equal(got, prog) {
				t.Errorf("DecompressPayload(xz %s [%s], %d bytes) = %d bytes, %v, want the %d-byte program", strings.Join(tt.args, " "), tt.name, len(payload), len(got), err, len(prog))
			}
		}
	}
}

func TestUnxz(t *testing.T) {
	prog := program(t, 700<<10)
	tests := []struct {
		name    string
		payload []byte
	}{
		{"BCJ, one block", xzStreamOf(t, [][]byte{prog}, true, 0)},
		{"BCJ, start offset in the properties", xzStreamOf(t, [][]byte{prog}, true, 0x0100_0000)},
		{"BCJ, three blocks each from offset 0", xzStreamOf(t, [][]byte{prog[:100000], prog[100000:400001], prog[400001:]}, true, 0)},
		{"LZMA2 alone", xzStreamOf(t, [][]byte{prog}, false, 0)},
	}
	for _, tt := range tests {
		got, err := DecompressPayload(sizeAppend(tt.payload, len(prog)))
		if err != nil || !bytes.Equal(got, prog) {
			t.Errorf("DecompressPayload(%s) = %d bytes, %v, want the %d-byte program", tt.name, len(got), err, len(prog))
		}
	}
}

func TestUnxzErrors(t *testing.T) {
	prog := program(t, 64<<10)
	good := xzStreamOf(t, [][]byte{prog}, true, 0)
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	le := binary.LittleEndian
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"stream header CRC", edit(func(b []byte) []byte { b[8] ^= 1; return b }), "stream header CRC32"},
		{"unsupported check type", edit(func(b []byte) []byte {
			b[7] = 0x02
			le.PutUint32(b[8:], crc32.ChecksumIEEE(b[6:8]))
			return b
		}), "check type 0x2"},
		{"footer magic", edit(func(b []byte) []byte { b[len(b)-1] = 'X'; return b }), "footer magic"},
		{"truncated", good[:len(good)-20], "footer"},
		{"two streams", append(append([]byte(nil), good...), good...), "blocks end at offset"},
		{"corrupt data", edit(func(b []byte) []byte { b[len(b)/2] ^= 0x55; return b }), "block 0"},
		{"check mismatch", edit(func(b []byte) []byte {
			// The CRC32 check is the 4 bytes before the index (8
			// bytes: indicator, count, record of 2+3 bytes... find it
			// from the footer's backward size).
			idx := (int(le.Uint32(b[len(b)-8:])) + 1) * 4
			b[len(b)-12-idx-1] ^= 1
			return b
		}), "check 0x1 mismatch"},
		{"block header CRC", edit(func(b []byte) []byte { b[12+2] ^= 0x80; return b }), "block header CRC32"},
		{"index CRC", edit(func(b []byte) []byte { b[len(b)-12-1] ^= 1; return b }), "index CRC32"},
	}
	arm := func() []byte {
		if _, err := exec.LookPath("xz"); err != nil {
			return nil
		}
		cmd := exec.Command("xz", "--arm", "--lzma2=preset=1", "-c")
		cmd.Stdin = bytes.NewReader(prog)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz --arm: %v", err)
		}
		return out
	}()
	if arm != nil {
		tests = append(tests, struct {
			name    string
			payload []byte
			want    string
		}{"ARM BCJ", arm, "filter chain has id 0x7"})
	}
	for _, tt := range tests {
		got, err := DecompressPayload(tt.payload)
		if err == nil || !errors.Is(err, ErrNoFastPath) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecompressPayload(%s) = %d bytes, %v, want an ErrNoFastPath error containing %q", tt.name, len(got), err, tt.want)
		}
	}
}

func TestXZVarint(t *testing.T) {
	tests := []struct {
		in   []byte
		want uint64
		ok   bool
	}{
		{[]byte{0x05}, 5, true},
		{[]byte{0x80, 0x01}, 128, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1<<63 - 1, true},
		{[]byte{0x80, 0x00}, 0, false}, // a needless zero byte
		{[]byte{0x80}, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, false},
	}
	for _, tt := range tests {
		got, _, err := xzVarint(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("xzVarint(% x) = %d, %v, want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestDecompressDebianGeneric decompresses Debian's generic kernel (xz
// with the x86 BCJ filter) when images.env in $GOVMM_CACHE names one, as
// `make images GENERIC=1` (run by make test) writes it.
func TestDecompressDebianGeneric(t *testing.T) {
	g, err := imagesenv.Load(os.Getenv("GOVMM_CACHE"))
	if err != nil || g.Generic == "" {
		t.Skipf("no Debian generic kernel named in $GOVMM_CACHE/images.env (%v): run make images GENERIC=1", err)
	}
	path := g.Generic
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	elf, err := Decompress(img)
	if err != nil {
		t.Fatalf("Decompress(%s) = %v", path, err)
	}
	t.Logf("decompressed %d bytes of xz+BCJ to %d in %v", len(img), len(elf), time.Since(start).Round(time.Millisecond))
	if !bytes.Contains(elf, []byte("Linux version ")) {
		t.Errorf("Decompress(%s): no Linux banner in the %d-byte result", path, len(elf))
	}
}
