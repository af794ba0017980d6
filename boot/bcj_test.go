package boot

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

// encodeBCJX86 is the filter's encoder, for the tests: xz applies it before
// LZMA2 when compressing with --x86.
func encodeBCJX86(buf []byte, start uint32) { bcjX86(buf, start, true) }

func TestBCJX86(t *testing.T) {
	tests := []struct {
		name    string
		start   uint32
		in, out string // hex: the data as in the executable, and after the encoder
	}{
		{"call +0x10 at 0", 0, "e810000000909090", "e815000000909090"},
		{"call +0x10 with start offset 0x1000", 0x1000, "e810000000909090", "e815100000909090"},
		{"call -0x20 (backwards)", 0x100, "90e8e0ffffff9090", "90e8e6000000" + "9090"},
		{"jmp rel32 too", 0, "e900010000cccccc", "e905010000cccccc"},
		{"far displacement is left alone", 0, "e800000012909090", "e800000012909090"},
		{"the last four bytes are never converted", 0, "90e8000000", "90e8000000"},
		{"an e8 inside a converted operand is skipped", 0, "e8e8000000909090", "e8ed000000909090"},
	}
	for _, tt := range tests {
		in, _ := hex.DecodeString(tt.in)
		want, _ := hex.DecodeString(tt.out)
		got := append([]byte(nil), in...)
		encodeBCJX86(got, tt.start)
		if !bytes.Equal(got, want) {
			t.Errorf("encodeBCJX86(%s [%s], %#x) = %x, want %x", tt.in, tt.name, tt.start, got, want)
		}
		unBCJX86(got, tt.start)
		if !bytes.Equal(got, in) {
			t.Errorf("unBCJX86(encodeBCJX86(%s [%s])) = %x, want it back", tt.in, tt.name, got)
		}
	}
}

// TestBCJX86MatchesXZ checks the filter against xz itself, an independent
// implementation: xz --format=raw --x86 --lzma2 of a real x86-64 program
// (this test binary), whose LZMA2 layer ulikunitz/xz undoes, must hold
// exactly what encodeBCJX86 makes of the program, and unBCJX86 must give
// the program back.
func TestBCJX86MatchesXZ(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz command (apt-get install xz-utils)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	prog = prog[:min(len(prog), 4<<20)]
	for _, start := range []uint32{0, 0x1000_0003} {
		args := []string{"--format=raw", "--x86", "--lzma2=preset=1", "-c"}
		if start != 0 {
			args[1] = "--x86=start=268435459" // 0x10000003
		}
		cmd := exec.Command("xz", args...)
		cmd.Stdin = bytes.NewReader(prog)
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", args, err)
		}
		r, err := lzma.Reader2Config{DictCap: 8 << 20}.NewReader2(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		fromXZ, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("LZMA2 layer of xz's output: %v", err)
		}
		mine := append([]byte(nil), prog...)
		encodeBCJX86(mine, start)
		if !bytes.Equal(mine, fromXZ) {
			i := 0
			for i < len(mine) && i < len(fromXZ) && mine[i] == fromXZ[i] {
				i++
			}
			t.Fatalf("encodeBCJX86(%d-byte program, %#x) differs from xz --x86 at byte %d (of %d and %d)", len(prog), start, i, len(mine), len(fromXZ))
		}
		unBCJX86(fromXZ, start)
		if !bytes.Equal(fromXZ, prog) {
			t.Fatalf("unBCJX86(xz's --x86 output, %#x) is not the program", start)
		}
	}
}

// FuzzBCJX86: the decoder undoes the encoder for any bytes at any start
// position, and the encoder undoes the decoder; neither changes the length
// or reaches outside the buffer (which would panic).
func FuzzBCJX86(f *testing.F) {
	f.Add([]byte{0xe8, 0x10, 0, 0, 0, 0x90}, uint32(0))
	f.Add([]byte{0xe8, 0xe8, 0xe9, 0, 0xff, 0xff, 0xe8, 0, 0, 0, 0}, uint32(0xffff_fff0))
	f.Add([]byte{0xe8, 0, 0xe8, 0, 0, 0, 0, 0xe9, 0xff, 0xe8, 0xff, 0xff, 0xff, 0xff}, uint32(7))
	f.Fuzz(func(t *testing.T, data []byte, start uint32) {
		buf := append([]byte(nil), data...)
		encodeBCJX86(buf, start)
		unBCJX86(buf, start)
		if !bytes.Equal(buf, data) {
			t.Fatalf("unBCJX86(encodeBCJX86(%x, %#x)) = %x", data, start, buf)
		}
		unBCJX86(buf, start)
		encodeBCJX86(buf, start)
		if !bytes.Equal(buf, data) {
			t.Fatalf("encodeBCJX86(unBCJX86(%x, %#x)) = %x", data, start, buf)
		}
	})
}
