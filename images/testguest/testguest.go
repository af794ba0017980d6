// Package testguest builds govmm's own small test guests from the C and
// assembly sources in src/, with the host's gcc and binutils, into a cache
// folder. The guests are also teaching material: see README.md for what they
// do and for their contract with the VMM (entry state, what they print, the
// command-line options, the exit statuses).
//
// One set of objects gives two kinds of images:
//
//   - guest.elf: an ELF64 executable loaded at 1 MiB, entered at its 64-bit
//     entry point (Linux boot protocol state) or, by QEMU, through the PVH
//     note (32-bit entry).
//   - guest*.bzImage: Linux bzImages whose protected-mode part holds the raw
//     guest at offset 0x200 (the 64-bit entry) and, as the payload, a
//     compressed copy of guest.elf, so a VMM may boot either.
package testguest

import "fmt"

// Guest-physical addresses, ports and statuses of the contract (README.md).
const (
	LoadAddr     = 0x100000   // where guest.elf and the bzImage's protected-mode part are loaded
	Entry64Off   = 0x200      // the 64-bit entry, from the protected-mode part's start
	UARTMMIO     = 0xD0000000 // 16550 registers as MMIO, one byte each (ring 3 prints here)
	ExitMMIO     = 0xD0001000 // debug-exit as MMIO: offset 0 exit status, offset 2 scratch
	ExitPort     = 0xf4       // debug-exit port: write the exit status
	BootMarkPort = 0xf5       // debug-exit offset 1: the guest writes 1 at its 64-bit entry
	ScratchPort  = 0xf6       // debug-exit offset 2: written n times by mode=pio
	// LegacyHole is the size of [0x9fc00, 0x100000): what expect_mem adds
	// to the usable e820 bytes outside that range.
	LegacyHole = 0x100000 - 0x9fc00
)

// Exit statuses the guest writes to ExitPort or ExitMMIO.
const (
	ExitOK          = 0
	ExitCheckFailed = 2
	ExitException   = 3
)

// QEMUExitCode is the exit code of QEMU's isa-debug-exit device when the
// guest writes status: (status << 1) | 1.
func QEMUExitCode(status int) int { return status<<1 | 1 }

// Compression names a bzImage payload format.
type Compression string

// The payload formats, as Linux's Kconfig names them.
const (
	Gzip Compression = "gzip"
	LZ4  Compression = "lz4" // the legacy frame, as `lz4 -l` writes it
	XZ   Compression = "xz"  // with --check=crc32
	Zstd Compression = "zstd"
)

// Compressions lists every payload format Build writes, in a fixed order.
var Compressions = []Compression{Gzip, LZ4, XZ, Zstd}

// Guests are the paths of one build's images, all in Dir.
type Guests struct {
	Dir string
	// ELF is guest.elf: PT_LOAD segments from LoadAddr, e_entry the 64-bit
	// entry, and a PVH note for QEMU.
	ELF string
	// BzImage is guest.bzImage: the same bytes as BzImages[Gzip] (Linux's
	// default payload format).
	BzImage string
	// BzImages are guest-<compression>.bzImage.
	BzImages map[Compression]string
}

// FNV1a is the 32-bit FNV-1a hash the guest prints for the initrd and
// compares with expect_initrd=.
func FNV1a(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// Checksum is the value ring 3 prints as "ring3 ok sum=%08x" after
// loops=<loops>: FNV-1a over buf[i%4096] for i in [0, loops), where
// buf[j] = byte(j*31 + 7).
func Checksum(loops uint64) uint32 {
	var buf [4096]byte
	for j := range buf {
		buf[j] = byte(j*31 + 7)
	}
	h := uint32(2166136261)
	for i := uint64(0); i < loops; i++ {
		h = (h ^ uint32(buf[i%4096])) * 16777619
	}
	return h
}

// CheckArgs returns the command-line words that make the guest check the
// memory size the VMM gave it and the initrd (nil initrd: no initrd check).
func CheckArgs(memBytes uint64, initrd []byte) string {
	s := fmt.Sprintf("expect_mem=%d", memBytes)
	if initrd != nil {
		s += fmt.Sprintf(" expect_initrd=%08x", FNV1a(initrd))
	}
	return s
}
