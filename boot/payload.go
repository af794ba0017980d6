package boot

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrNoFastPath is wrapped by every error of the fast path (finding and
// decompressing a bzImage's payload in the VMM). Callers that see it boot
// the bzImage the normal way, letting the kernel decompress itself.
var ErrNoFastPath = errors.New("no fast path: boot the bzImage normally")

// Format is the compression of a bzImage payload.
type Format int

// Payload formats Linux can build (arch/x86/boot/compressed, CONFIG_KERNEL_*).
const (
	FormatUnknown Format = iota
	FormatGzip
	FormatXZ
	FormatLZ4Legacy
	FormatZstd
	FormatBzip2
	FormatLZMA
	FormatLZO
	FormatELF // an uncompressed payload (CONFIG_KERNEL_UNCOMPRESSED)
)

var formatNames = [...]string{"unknown", "gzip", "xz", "lz4 (legacy frame)", "zstd", "bzip2", "lzma", "lzo", "uncompressed ELF"}

func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Magic numbers at the start of each format's stream.
var formatMagic = []struct {
	f     Format
	magic []byte
}{
	{FormatGzip, []byte{0x1f, 0x8b}},                           // RFC 1952, 2.3.1 ID1 ID2
	{FormatXZ, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},         // xz file format 1.2, 2.1.1.1
	{FormatLZ4Legacy, []byte{0x02, 0x21, 0x4c, 0x18}},          // lz4 frame format, "Legacy frame"
	{FormatZstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},               // RFC 8878, 3.1.1 Magic_Number
	{FormatBzip2, []byte{'B', 'Z', 'h'}},                       // bzip2 stream header
	{FormatLZMA, []byte{0x5d, 0x00, 0x00}},                     // lzma-alone, lc=3 lp=0 pb=2 props
	{FormatLZO, []byte{0x89, 'L', 'Z', 'O', 0x00, '\r', '\n'}}, // lzop header
	{FormatELF, []byte{0x7f, 'E', 'L', 'F'}},                   // ELF e_ident
}

// DetectFormat names the compression of a payload from its first bytes.
func DetectFormat(payload []byte) Format {
	for _, m := range formatMagic {
		if bytes.HasPrefix(payload, m.magic) {
			return m.f
		}
	}
	return FormatUnknown
}

// Payload returns the compressed kernel inside a bzImage: payload_length
// bytes at payload_offset from the start of the protected-mode code
// (boot.rst, fields "payload_offset" and "payload_length"; ParseBzImage has
// checked the range).
func (bz *BzImage) Payload() ([]byte, error) {
	h := bz.Header
	if h.PayloadLength == 0 {
		return nil, fmt.Errorf("bzImage: payload_length is 0: the kernel does not say where its payload is: %w", ErrNoFastPath)
	}
	off, n := uint64(h.PayloadOffset), uint64(h.PayloadLength)
	return bz.Kernel[off : off+n : off+n], nil
}
