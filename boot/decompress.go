package boot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed caps the size of a decompressed kernel, so that a hostile
// image cannot make the VMM exhaust memory. Real vmlinux files are 20-100 MiB.
const MaxDecompressed = 512 << 20

// noFastPath wraps err with ErrNoFastPath.
func noFastPath(err error) error { return fmt.Errorf("%w; %w", err, ErrNoFastPath) }

// Decompress finds the payload of a bzImage and decompresses it to the ELF
// vmlinux inside. Every error wraps ErrNoFastPath.
func Decompress(image []byte) ([]byte, error) {
	bz, err := ParseBzImage(image)
	if err != nil {
		return nil, noFastPath(err)
	}
	p, err := bz.Payload()
	if err != nil {
		return nil, err
	}
	// The image may be a file mapped (MapFile), and the decoders read
	// their input on goroutines of their own, outside the caller's Guard:
	// they get a copy.
	return DecompressPayload(bytes.Clone(p))
}

// DecompressPayload decompresses a bzImage payload of any format Go can
// read (gzip, xz with or without the x86 BCJ filter, legacy-frame lz4,
// zstd) and checks
// that the result is an ELF file. Bytes after the compressed stream are
// ignored: Linux appends the uncompressed size as 4 little-endian bytes
// (the Makefile's size_append). Every error wraps ErrNoFastPath.
func DecompressPayload(payload []byte) ([]byte, error) {
	var out []byte
	var err error
	switch f := DetectFormat(payload); f {
	case FormatGzip:
		out, err = gunzip(payload)
	case FormatXZ:
		out, err = unxz(payload)
	case FormatLZ4Legacy:
		out, err = unlz4Legacy(payload)
	case FormatZstd:
		out, err = unzstd(payload)
	case FormatELF:
		out = payload
	case FormatUnknown:
		return nil, noFastPath(fmt.Errorf("bzImage payload starts with % x, no known compression magic", payload[:min(len(payload), 8)]))
	default:
		return nil, noFastPath(fmt.Errorf("bzImage payload is %v, which govmm cannot decompress", f))
	}
	if err != nil {
		return nil, noFastPath(err)
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		return nil, noFastPath(fmt.Errorf("decompressed payload (%d bytes) is not an ELF file", len(out)))
	}
	return out, nil
}

// readCapped reads r to its end, failing past MaxDecompressed bytes.
func readCapped(what string, r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(b) > MaxDecompressed {
		return nil, fmt.Errorf("%s: decompresses to more than %d MiB, the cap for a kernel", what, MaxDecompressed>>20)
	}
	return b, nil
}

func gunzip(p []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	zr.Multistream(false) // stop at the end of the member: the size trailer follows
	return readCapped("gzip", zr)
}

func unzstd(p []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressed))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	defer d.Close()
	// The decoder reads frames until the input ends, so it rejects the size
	// trailer: try without the last 4 bytes first.
	if len(p) > 4 {
		if out, err := d.DecodeAll(p[:len(p)-4], nil); err == nil {
			return out, nil
		}
	}
	out, err := d.DecodeAll(p, nil)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return out, nil
}

// Legacy lz4 frame (lz4 frame format description, "Legacy frame"): the
// magic, then blocks of a 4-byte little-endian compressed size and that many
// bytes, each decompressing to at most 8 MiB. There is no end mark; a new
// magic where a size is expected starts another frame.
const (
	lz4LegacyMagic     = 0x184c2102
	lz4LegacyBlockSize = 8 << 20
)

func unlz4Legacy(p []byte) ([]byte, error) {
	le := binary.LittleEndian
	rest := p[4:] // DetectFormat saw the magic
	block := make([]byte, lz4LegacyBlockSize)
	bound := uint64(lz4.CompressBlockBound(lz4LegacyBlockSize))
	var out []byte
	for len(rest) >= 4 {
		n := uint64(le.Uint32(rest))
		rest = rest[4:]
		switch {
		case n == lz4LegacyMagic:
			continue
		case len(rest) == 0:
			return out, nil // the 4 bytes were the size trailer, not a block
		case n == 0 || n > bound || n > uint64(len(rest)):
			return nil, fmt.Errorf("lz4: block of %d bytes with %d bytes left in the payload: the payload is corrupt", n, len(rest))
		}
		m, err := lz4.UncompressBlock(rest[:n], block)
		if err != nil {
			return nil, fmt.Errorf("lz4: block at payload offset %d: %w", len(p)-len(rest)-4, err)
		}
		if len(out)+m > MaxDecompressed {
			return nil, fmt.Errorf("lz4: decompresses to more than %d MiB, the cap for a kernel", MaxDecompressed>>20)
		}
		out = append(out, block[:m]...)
		rest = rest[n:]
	}
	if len(out) == 0 {
		return nil, errors.New("lz4: the payload holds no blocks")
	}
	return out, nil
}
