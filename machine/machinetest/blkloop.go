package machinetest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The test guest's virtio-blk loop (images/testguest mode=virtio
// blk_loop=N, virtio.c): LoopN requests of LoopBytes from sector
// LoopSector, written and read back each round with the pattern moved on
// by the round, a 'V' printed after each. The snapshot and migration
// tests run it to catch a device, or dirty tracking, that loses a write.
const (
	LoopSector = 64
	LoopN      = 64
	LoopBytes  = 4096
)

// LoopCmdline is the test guest's command line for rounds of the loop.
func LoopCmdline(rounds int) string {
	return fmt.Sprintf("mode=virtio blk_sector=%d blk_n=%d blk_bytes=%d blk_loop=%d", LoopSector, LoopN, LoopBytes, rounds)
}

// LoopPattern is what round r of the loop writes at disk offset off
// (PATTERN in images/testguest/src/virtio.h, plus r).
func LoopPattern(off uint64, r int) byte { return byte((off>>9)*7+off*13+0x5a) + byte(r) }

// LoopRounds counts the loop's rounds in a guest's serial output; a
// restored or migrated guest's output starts inside the loop.
func LoopRounds(out string) int {
	if _, after, ok := strings.Cut(out, "virtio-blk loop start"); ok {
		out = after
	}
	line, _, _ := strings.Cut(out, "\nvirtio-blk loop")
	return strings.Count(line, "V")
}

// CheckLoopDisk fails t unless the loop's blocks in the disk file at path
// hold round r's pattern.
func CheckLoopDisk(t testing.TB, path string, r int) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < LoopN*LoopBytes; i++ {
		off := LoopSector*512 + i
		if got[off] != LoopPattern(off, r) {
			t.Fatalf("%s: byte %d = %#x, want %#x (round %d's)", filepath.Base(path), off, got[off], LoopPattern(off, r), r)
		}
	}
}

// CopyFile copies the file src (a disk image) to dst.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
