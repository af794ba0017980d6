package boot

// The x86 branch/call/jump (BCJ) filter: filter ID 0x04 of "The .xz File
// Format" 1.2.1, section 5.3.3 ("Branch/Call/Jump Filters for
// Executables"), whose only property is an optional 32-bit start offset.
// The format leaves the filter's algorithm to its implementations in xz
// and the LZMA SDK; this is a rewrite from their published description:
//
// A CALL rel32 (E8) or JMP rel32 (E9) holds a displacement relative to the
// next instruction. Calls to one function from many places have different
// displacements but the same target, so the encoder replaces the
// displacement with the absolute target (displacement + stream position of
// the next instruction), which compresses better; the decoder subtracts
// the position again. Only displacements whose top byte is 00 or FF (near
// targets, forwards or backwards) are converted, and the result keeps
// that property: bits 25-31 are copies of bit 24.
//
// Bytes that are not really instructions can look like E8/E9. The filter
// remembers, as a 3-bit mask, which of the three bytes before the current
// one were E8/E9 left unconverted, and skips positions where that history
// makes a real instruction unlikely. For the conversion to be undone, the
// encoder must not produce a displacement whose bytes would change that
// decision: where a byte the mask points at comes out as 00 or FF, it
// converts again with that byte's bits flipped, until it does not.
//
// The last four bytes of the data are never converted: an instruction
// starting there would run past the end.

// bcjIsNear reports whether b is the top byte of a near displacement.
func bcjIsNear(b byte) bool { return b == 0x00 || b == 0xFF }

// bcjAllowed says, for each history mask, whether an E8/E9 at the current
// position may be an instruction at all; bcjMaskByte says which byte of
// the displacement (counting back from the top one) the history puts in
// doubt.
var (
	bcjAllowed  = [8]bool{true, true, true, false, true, false, false, false}
	bcjMaskByte = [8]uint{0, 1, 2, 2, 3, 3, 3, 3}
)

// bcjX86 converts buf in place, as the data at stream position start:
// from relative to absolute targets when encode is set, back otherwise.
// It reads and writes only buf.
func bcjX86(buf []byte, start uint32, encode bool) {
	var mask uint32 // E8/E9 bytes left unconverted among the last three
	last := -1      // where the last E8/E9 was, -1 before any
	for i := 0; i+4 < len(buf); i++ {
		if buf[i]&0xFE != 0xE8 {
			continue
		}
		if d := i - last; d > 3 {
			mask = 0
		} else {
			mask = mask << (d - 1) & 7
			if mask != 0 && (!bcjAllowed[mask] || bcjIsNear(buf[i+4-int(bcjMaskByte[mask])])) {
				last = i
				mask = mask<<1 | 1
				continue
			}
		}
		last = i
		if !bcjIsNear(buf[i+4]) {
			mask = mask<<1 | 1
			continue
		}
		pc := start + uint32(i) + 5 // the next instruction's position
		v := uint32(buf[i+1]) | uint32(buf[i+2])<<8 | uint32(buf[i+3])<<16 | uint32(buf[i+4])<<24
		var out uint32
		for {
			if encode {
				out = v + pc
			} else {
				out = v - pc
			}
			if mask == 0 {
				break
			}
			shift := 24 - 8*bcjMaskByte[mask]
			if !bcjIsNear(byte(out >> shift)) {
				break
			}
			v = out ^ (1<<(shift+8) - 1)
		}
		// Bits 25-31 copy bit 24: a near displacement stays near.
		out &= 0x01FF_FFFF
		out |= -(out & 0x0100_0000)
		buf[i+1], buf[i+2], buf[i+3], buf[i+4] = byte(out), byte(out>>8), byte(out>>16), byte(out>>24)
		i += 4
	}
}

// unBCJX86 undoes the x86 BCJ filter on buf, the whole output of one xz
// block, which the filter saw starting at stream position start (the
// filter's Start Offset property, 0 by default).
func unBCJX86(buf []byte, start uint32) { bcjX86(buf, start, false) }
