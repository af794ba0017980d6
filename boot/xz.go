package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"io"
	"sync"

	"github.com/ulikunitz/xz/lzma"
)

// An xz payload, read as "The .xz File Format" version 1.2.1 describes it
// (section numbers below are that document's): one stream of blocks whose
// filter chain is LZMA2 alone, or the x86 BCJ filter then LZMA2, which is
// how Linux compresses a kernel (scripts/xz_wrap.sh: xz --check=crc32
// --x86 --lzma2). ulikunitz/xz decodes the LZMA2 layer; this file reads
// the container, runs the filters and verifies the checks. The index
// (section 4) gives each block's sizes up front, so the output is
// allocated once and nothing is read past a block's end.
const (
	xzStreamHeaderSize = 12 // 2.1.1: magic 6, flags 2, CRC32 4
	xzFooterSize       = 12 // 2.1.2: CRC32 4, backward size 4, flags 2, magic 2

	xzFilterX86   = 0x04      // 5.3.3
	xzFilterLZMA2 = 0x21      // 5.3.1
	xzMaxDict     = 128 << 20 // Linux builds kernels with a 32 MiB dictionary

	xzCheckNone   = 0x00 // 3.4
	xzCheckCRC32  = 0x01
	xzCheckCRC64  = 0x04
	xzCheckSHA256 = 0x0A
)

var (
	xzMagic       = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00} // 2.1.1.1
	xzFooterMagic = []byte{'Y', 'Z'}                       // 2.1.2.4
)

// xzBlock is one record of the index (4.3): where a block is and what it
// holds.
type xzBlock struct {
	start        uint64 // offset of its header in the stream
	unpadded     uint64 // header + compressed data + check (4.3.1)
	uncompressed uint64
}

// unxz decodes an xz payload of one stream.
func unxz(p []byte) ([]byte, error) {
	// Linux appends the uncompressed size as 4 bytes after the stream,
	// which ends with the footer magic: drop them.
	if n := len(p); n > 6 && !bytes.HasSuffix(p, xzFooterMagic) && bytes.HasSuffix(p[:n-4], xzFooterMagic) {
		p = p[:n-4]
	}
	if len(p) < xzStreamHeaderSize+xzFooterSize {
		return nil, fmt.Errorf("xz: %d bytes cannot hold a stream header and footer (2.1)", len(p))
	}
	check, err := xzStreamFlags(p[:xzStreamHeaderSize])
	if err != nil {
		return nil, err
	}
	blocks, total, err := xzIndex(p, check)
	if err != nil {
		return nil, err
	}
	out := make([]byte, total)
	off := uint64(0)
	for i, b := range blocks {
		if err := xzDecodeBlock(p, b, check, out[off:off+b.uncompressed]); err != nil {
			return nil, fmt.Errorf("xz: block %d at offset %d: %w", i, b.start, err)
		}
		off += b.uncompressed
	}
	return out, nil
}

// xzStreamFlags checks the stream header (2.1.1) and returns the check
// type its flags name.
func xzStreamFlags(h []byte) (byte, error) {
	if !bytes.Equal(h[:6], xzMagic) {
		return 0, errors.New("xz: no stream header magic (2.1.1.1)")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return 0, errors.New("xz: stream header CRC32 mismatch (2.1.1.3)")
	}
	if h[6] != 0 || h[7]&0xF0 != 0 {
		return 0, fmt.Errorf("xz: stream flags % x set reserved bits (2.1.1.2)", h[6:8])
	}
	switch c := h[7]; c {
	case xzCheckNone, xzCheckCRC32, xzCheckCRC64, xzCheckSHA256:
		return c, nil
	default:
		return 0, fmt.Errorf("xz: check type %#x is not supported (3.4: none, CRC32, CRC64, SHA-256)", c)
	}
}

// xzCheckSize is the size of a block's check field (3.4).
func xzCheckSize(check byte) uint64 {
	return [16]uint64{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[check&0xF]
}

// xzIndex reads the stream footer (2.1.2) and the index (4) it points to,
// and returns the blocks, which it checks tile the stream between the
// header and the index, and their total uncompressed size.
func xzIndex(p []byte, check byte) ([]xzBlock, uint64, error) {
	le := binary.LittleEndian
	foot := p[len(p)-xzFooterSize:]
	if !bytes.Equal(foot[10:], xzFooterMagic) {
		return nil, 0, errors.New("xz: no stream footer magic at the end (2.1.2.4): the payload is truncated or holds more than one stream")
	}
	if crc32.ChecksumIEEE(foot[4:10]) != le.Uint32(foot) {
		return nil, 0, errors.New("xz: stream footer CRC32 mismatch (2.1.2.1)")
	}
	if foot[8] != 0 || foot[9] != check {
		return nil, 0, fmt.Errorf("xz: stream footer flags % x differ from the header's (2.1.2.3)", foot[8:10])
	}
	indexSize := (uint64(le.Uint32(foot[4:])) + 1) * 4 // 2.1.2.2
	if indexSize < 8 || indexSize > uint64(len(p)-xzStreamHeaderSize-xzFooterSize) {
		return nil, 0, fmt.Errorf("xz: index of %d bytes does not fit the %d-byte stream (2.1.2.2)", indexSize, len(p))
	}
	indexStart := uint64(len(p)-xzFooterSize) - indexSize
	idx := p[indexStart : uint64(len(p))-xzFooterSize]
	if crc32.ChecksumIEEE(idx[:len(idx)-4]) != le.Uint32(idx[len(idx)-4:]) {
		return nil, 0, errors.New("xz: index CRC32 mismatch (4.6)")
	}
	if idx[0] != 0 {
		return nil, 0, fmt.Errorf("xz: index indicator is %#x, want 0 (4.1)", idx[0])
	}
	rest := idx[1 : len(idx)-4]
	n, rest, err := xzVarint(rest)
	if err != nil {
		return nil, 0, err
	}
	if n > uint64(len(rest))/2 { // each record takes at least two bytes
		return nil, 0, fmt.Errorf("xz: index claims %d records in %d bytes (4.2)", n, len(rest))
	}
	blocks := make([]xzBlock, 0, n)
	pos, total := uint64(xzStreamHeaderSize), uint64(0)
	for range n {
		var b xzBlock
		if b.unpadded, rest, err = xzVarint(rest); err != nil {
			return nil, 0, err
		}
		if b.uncompressed, rest, err = xzVarint(rest); err != nil {
			return nil, 0, err
		}
		// 4.3.1: at least a minimal header (8), one byte of data and the
		// check; and it lies before the index, padded to 4 bytes (3.3).
		if b.unpadded < 9+xzCheckSize(check) || b.unpadded > indexStart {
			return nil, 0, fmt.Errorf("xz: index record with unpadded size %d is impossible (4.3.1)", b.unpadded)
		}
		b.start = pos
		pos += (b.unpadded + 3) &^ 3
		if pos > indexStart {
			return nil, 0, fmt.Errorf("xz: blocks run past the index at offset %d (4.3.1)", indexStart)
		}
		if b.uncompressed > MaxDecompressed-total {
			return nil, 0, fmt.Errorf("xz: decompresses to more than %d MiB, the cap for a kernel", MaxDecompressed>>20)
		}
		total += b.uncompressed
		blocks = append(blocks, b)
	}
	if pos != indexStart {
		return nil, 0, fmt.Errorf("xz: the index's blocks end at offset %d, the index starts at %d (4.3)", pos, indexStart)
	}
	for _, c := range rest { // 4.4: index padding
		if c != 0 {
			return nil, 0, errors.New("xz: nonzero index padding (4.4)")
		}
	}
	if len(rest) > 3 {
		return nil, 0, fmt.Errorf("xz: %d bytes after the index records, want at most 3 of padding (4.4)", len(rest))
	}
	return blocks, total, nil
}

// xzChain is a block's filter chain as this decoder runs it.
type xzChain struct {
	x86      bool   // the x86 BCJ filter comes first
	x86Start uint32 // its start offset (5.3.3)
	dict     uint64 // the LZMA2 dictionary size (5.3.1)
}

// xzDecodeBlock decodes block b of stream p into out, which has exactly
// the uncompressed size the index gave. A block is its header, the
// compressed data, 0-3 zero bytes of padding to a multiple of four, and
// the check (3).
func xzDecodeBlock(p []byte, b xzBlock, check byte, out []byte) error {
	block := p[b.start : b.start+(b.unpadded+3)&^3]
	hsize := (uint64(block[0]) + 1) * 4 // 3.1.1; block[0] == 0 would be the index
	checkSize := xzCheckSize(check)
	if block[0] == 0 || hsize+checkSize >= b.unpadded {
		return fmt.Errorf("block header size byte %#x does not fit the %d-byte block (3.1.1)", block[0], b.unpadded)
	}
	dataEnd := b.unpadded - checkSize
	chain, err := xzBlockHeader(block[:hsize], dataEnd-hsize, b.uncompressed)
	if err != nil {
		return err
	}
	padEnd := uint64(len(block)) - checkSize
	for _, c := range block[dataEnd:padEnd] { // 3.3
		if c != 0 {
			return errors.New("nonzero block padding (3.3)")
		}
	}
	data := bytes.NewReader(block[hsize:dataEnd])
	r, err := lzma.Reader2Config{DictCap: int(max(chain.dict, lzma.MinDictCap))}.NewReader2(data)
	if err != nil {
		return fmt.Errorf("LZMA2: %w", err)
	}
	if _, err := io.ReadFull(r, out); err != nil {
		return fmt.Errorf("LZMA2 data ends before the %d bytes the index gives: %w", len(out), err)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF || !r.EOS() {
		return fmt.Errorf("LZMA2 data holds more than the %d bytes the index gives, or no end marker (5.3.1)", len(out))
	}
	if data.Len() != 0 {
		return fmt.Errorf("%d bytes of compressed data after the LZMA2 end marker (3.2)", data.Len())
	}
	if chain.x86 {
		unBCJX86(out, chain.x86Start)
	}
	return xzVerify(check, out, block[padEnd:])
}

// xzBlockHeader reads a block header (3.1) and its filter flags (3.1.5),
// checking the sizes it declares against the index's.
func xzBlockHeader(h []byte, compressed, uncompressed uint64) (xzChain, error) {
	var c xzChain
	if crc32.ChecksumIEEE(h[:len(h)-4]) != binary.LittleEndian.Uint32(h[len(h)-4:]) {
		return c, errors.New("block header CRC32 mismatch (3.1.7)")
	}
	flags := h[1]
	if flags&0x3C != 0 {
		return c, fmt.Errorf("block flags %#x set reserved bits (3.1.2)", flags)
	}
	rest := h[2 : len(h)-4]
	var err error
	for _, f := range []struct {
		present bool
		want    uint64
		name    string
	}{{flags&0x40 != 0, compressed, "compressed"}, {flags&0x80 != 0, uncompressed, "uncompressed"}} {
		if !f.present {
			continue
		}
		var v uint64
		if v, rest, err = xzVarint(rest); err != nil {
			return c, err
		}
		if v != f.want {
			return c, fmt.Errorf("block header says %s size %d, the index %d (3.1.3, 3.1.4)", f.name, v, f.want)
		}
	}
	filters := int(flags&3) + 1
	for i := range filters {
		var id, n uint64
		if id, rest, err = xzVarint(rest); err != nil {
			return c, err
		}
		if n, rest, err = xzVarint(rest); err != nil {
			return c, err
		}
		if n > uint64(len(rest)) {
			return c, fmt.Errorf("filter %d properties of %d bytes run past the block header (3.1.5)", i, n)
		}
		props := rest[:n]
		rest = rest[n:]
		last := i == filters-1
		switch {
		case id == xzFilterX86 && !last && i == 0:
			switch len(props) {
			case 0:
			case 4:
				c.x86Start = binary.LittleEndian.Uint32(props)
			default:
				return c, fmt.Errorf("x86 BCJ properties of %d bytes, want 0 or 4 (5.3.3)", len(props))
			}
			c.x86 = true
		case id == xzFilterLZMA2 && last:
			if len(props) != 1 || props[0]&0x3F > 40 || props[0]&0xC0 != 0 {
				return c, fmt.Errorf("LZMA2 properties % x are invalid (5.3.1)", props)
			}
			bits := uint64(props[0] & 0x3F)
			c.dict = 0xFFFF_FFFF
			if bits < 40 {
				c.dict = (2 | bits&1) << (bits/2 + 11)
			}
			if c.dict > xzMaxDict {
				return c, fmt.Errorf("LZMA2 dictionary of %d MiB is over the %d MiB cap", c.dict>>20, xzMaxDict>>20)
			}
		default:
			return c, fmt.Errorf("filter chain has id %#x at position %d of %d; govmm decodes LZMA2 (0x21) alone or after x86 BCJ (0x04)", id, i+1, filters)
		}
	}
	for _, b := range rest { // 3.1.6: header padding
		if b != 0 {
			return c, errors.New("nonzero block header padding (3.1.6)")
		}
	}
	return c, nil
}

// xzVerify compares a block's check field (3.4) with its data.
func xzVerify(check byte, data, field []byte) error {
	var sum []byte
	switch check {
	case xzCheckNone:
		return nil
	case xzCheckCRC32:
		sum = binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	case xzCheckCRC64:
		sum = binary.LittleEndian.AppendUint64(nil, crc64.Checksum(data, crc64Table()))
	case xzCheckSHA256:
		s := sha256.Sum256(data)
		sum = s[:]
	}
	if !bytes.Equal(sum, field) {
		return fmt.Errorf("check %#x mismatch: the data is corrupt (3.4)", check)
	}
	return nil
}

// crc64Table is CRC-64 with the ECMA-182 polynomial, as xz uses it.
var crc64Table = sync.OnceValue(func() *crc64.Table { return crc64.MakeTable(crc64.ECMA) })

// xzVarint decodes a multibyte integer (1.2): 7 bits a byte, low bits
// first, at most 9 bytes, no needless trailing zero byte.
func xzVarint(b []byte) (uint64, []byte, error) {
	var v uint64
	for i := 0; i < 9 && i < len(b); i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, nil, errors.New("xz: a multibyte integer has a needless zero byte (1.2)")
			}
			return v, b[i+1:], nil
		}
	}
	return 0, nil, errors.New("xz: a multibyte integer is truncated or over 9 bytes (1.2)")
}
