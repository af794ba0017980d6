package boot

import "fmt"

// Checks on an xz payload before the decoder allocates anything, following
// "The .xz File Format" 1.2: section 2.1.1 (stream header, 12 bytes) and
// 3.1 (block header). The Go decoder supports only a lone LZMA2 filter, and
// it allocates the dictionary size the stream asks for.
const (
	xzStreamHeaderSize = 12
	xzFilterLZMA2      = 0x21
	xzFilterX86        = 0x04
	xzMaxDict          = 128 << 20 // Linux builds kernels with a 32 MiB dictionary
)

// checkXZFilters reads the first block header of an xz stream and rejects
// filter chains the decoder cannot run and dictionaries over xzMaxDict.
func checkXZFilters(p []byte) error {
	if len(p) <= xzStreamHeaderSize {
		return fmt.Errorf("xz: payload of %d bytes ends inside the stream header", len(p))
	}
	b := p[xzStreamHeaderSize:]
	if b[0] == 0 {
		return fmt.Errorf("xz: the stream holds no blocks (section 3.1.1: 0x00 starts the index)")
	}
	size := (int(b[0]) + 1) * 4 // section 3.1.1: real size = (encoded + 1) * 4
	if size > len(b) {
		return fmt.Errorf("xz: block header of %d bytes runs past the %d-byte payload", size, len(p))
	}
	h := b[1 : size-4] // drop the size byte and the CRC32 (section 3.1.7)
	flags := h[0]
	if flags&0x3c != 0 {
		return fmt.Errorf("xz: block flags %#x set reserved bits (section 3.1.2)", flags)
	}
	h = h[1:]
	var err error
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			if _, h, err = xzVarint(h); err != nil {
				return err
			}
		}
	}
	filters := int(flags&3) + 1
	for i := range filters {
		var id, n uint64
		if id, h, err = xzVarint(h); err != nil {
			return err
		}
		if n, h, err = xzVarint(h); err != nil {
			return err
		}
		if n > uint64(len(h)) {
			return fmt.Errorf("xz: filter %d properties of %d bytes run past the block header", i, n)
		}
		props := h[:n]
		h = h[n:]
		switch {
		case id == xzFilterX86:
			return fmt.Errorf("xz: the payload uses the x86 BCJ filter (id 0x04), which the Go xz decoder lacks")
		case id != xzFilterLZMA2:
			return fmt.Errorf("xz: filter id %#x is not supported (only LZMA2, 0x21)", id)
		case len(props) != 1 || props[0]&0x3f > 40:
			return fmt.Errorf("xz: LZMA2 properties % x are invalid (section 5.3.1)", props)
		}
		bits := uint(props[0] & 0x3f)
		dict := uint64(0xffff_ffff)
		if bits < 40 {
			dict = (2 | uint64(bits&1)) << (bits/2 + 11)
		}
		if dict > xzMaxDict {
			return fmt.Errorf("xz: LZMA2 dictionary of %d MiB is over the %d MiB cap", dict>>20, xzMaxDict>>20)
		}
	}
	return nil
}

// xzVarint decodes a multibyte integer (section 1.2): 7 bits a byte, low
// bits first, at most 9 bytes.
func xzVarint(b []byte) (uint64, []byte, error) {
	var v uint64
	for i := 0; i < 9 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, b[i+1:], nil
		}
	}
	return 0, nil, fmt.Errorf("xz: a multibyte integer in the block header is truncated or over 9 bytes")
}
