package acpi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// FuzzAMLData builds data objects (integers, strings, buffers and
// packages nested in packages) from the fuzzer's bytes, encodes them, and
// decodes the AML again with the grammar of the specification (20.2.3,
// 20.2.4, 20.2.5.4), written here apart from the encoder: every PkgLength
// must span its package exactly, whatever the size (the one- to four-byte
// forms), and the decoded objects must be the ones built.
func FuzzAMLData(f *testing.F) {
	f.Add([]byte{0, 5})
	f.Add([]byte{3, 2, 1, 0xFF, 0, 0})
	f.Add(bytes.Repeat([]byte{3, 60, 2, 200}, 20))
	f.Add(append([]byte{2, 0xFF, 0x0F}, bytes.Repeat([]byte{7}, 300)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		g := &gen{in: in}
		obj := g.object(0)
		enc := obj.encode()
		got, n, err := decodeData(enc)
		if err != nil || n != len(enc) {
			t.Fatalf("decode(encode(%v)) = %v, %d of %d bytes, %v", obj, got, n, len(enc), err)
		}
		if !got.equal(obj) {
			t.Fatalf("decode(encode(%v)) = %v", obj, got)
		}
	})
}

// data is a decoded data object: exactly one of its fields is set.
type data struct {
	integer *uint64
	str     *string
	buffer  []byte // non-nil for a buffer, even an empty one
	pkg     []data // non-nil for a package
}

func (d data) encode() []byte {
	switch {
	case d.integer != nil:
		return Integer(*d.integer)
	case d.str != nil:
		return String(*d.str)
	case d.buffer != nil:
		return Buffer(d.buffer)
	}
	elems := make([][]byte, len(d.pkg))
	for i, e := range d.pkg {
		elems[i] = e.encode()
	}
	return Package(elems...)
}

func (d data) equal(o data) bool {
	switch {
	case d.integer != nil:
		return o.integer != nil && *o.integer == *d.integer
	case d.str != nil:
		return o.str != nil && *o.str == *d.str
	case d.buffer != nil:
		return o.buffer != nil && bytes.Equal(o.buffer, d.buffer)
	}
	if o.pkg == nil || len(o.pkg) != len(d.pkg) {
		return false
	}
	for i := range d.pkg {
		if !d.pkg[i].equal(o.pkg[i]) {
			return false
		}
	}
	return true
}

func (d data) String() string {
	switch {
	case d.integer != nil:
		return fmt.Sprintf("%#x", *d.integer)
	case d.str != nil:
		return fmt.Sprintf("%q", *d.str)
	case d.buffer != nil:
		return fmt.Sprintf("buffer[%d]", len(d.buffer))
	}
	return fmt.Sprint(d.pkg)
}

// gen turns fuzz bytes into objects; past the end it reads zeros.
type gen struct {
	in []byte
	i  int
}

func (g *gen) byte() byte {
	if g.i >= len(g.in) {
		return 0
	}
	g.i++
	return g.in[g.i-1]
}

func (g *gen) object(depth int) data {
	switch k := g.byte() % 4; {
	case k == 0 || depth > 4:
		var b [8]byte
		for i := range 1 + int(g.byte()%8) {
			b[i] = g.byte()
		}
		v := binary.LittleEndian.Uint64(b[:])
		return data{integer: &v}
	case k == 1:
		s := make([]byte, int(g.byte()%40))
		for i := range s {
			s[i] = 1 + g.byte()%0x7F
		}
		str := string(s)
		return data{str: &str}
	case k == 2:
		// Up to 64 KiB, so that PkgLength's three- and four-byte forms
		// come up.
		n := int(g.byte()) | int(g.byte())<<8
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)
		}
		return data{buffer: b}
	}
	n := int(g.byte())
	pkg := make([]data, 0, n)
	for range n {
		if g.i >= len(g.in) {
			break
		}
		pkg = append(pkg, g.object(depth+1))
	}
	return data{pkg: pkg}
}

// decodeData reads one DataObject (ComputationalData or DefPackage) and
// returns it and how many bytes it took.
func decodeData(b []byte) (data, int, error) {
	if len(b) == 0 {
		return data{}, 0, fmt.Errorf("no data object")
	}
	switch op := b[0]; op {
	case 0x00, 0x01, 0xFF: // ZeroOp, OneOp, OnesOp
		v := map[byte]uint64{0x00: 0, 0x01: 1, 0xFF: ^uint64(0)}[op]
		return data{integer: &v}, 1, nil
	case 0x0A, 0x0B, 0x0C, 0x0E: // Byte, Word, DWord, QWord prefix
		n := map[byte]int{0x0A: 1, 0x0B: 2, 0x0C: 4, 0x0E: 8}[op]
		if len(b) < 1+n {
			return data{}, 0, fmt.Errorf("integer cut short")
		}
		var buf [8]byte
		copy(buf[:], b[1:1+n])
		v := binary.LittleEndian.Uint64(buf[:])
		return data{integer: &v}, 1 + n, nil
	case 0x0D: // StringPrefix AsciiCharList NullChar
		end := bytes.IndexByte(b[1:], 0)
		if end < 0 {
			return data{}, 0, fmt.Errorf("string without NUL")
		}
		s := string(b[1 : 1+end])
		return data{str: &s}, end + 2, nil
	case 0x11, 0x12: // BufferOp, PackageOp
		length, pl, err := decodePkgLength(b[1:])
		if err != nil {
			return data{}, 0, err
		}
		if 1+length > len(b) {
			return data{}, 0, fmt.Errorf("package of %d bytes in %d", length, len(b)-1)
		}
		body := b[1+pl : 1+length]
		if op == 0x11 {
			size, n, err := decodeData(body)
			if err != nil || size.integer == nil {
				return data{}, 0, fmt.Errorf("buffer size: %v", err)
			}
			if uint64(len(body)-n) != *size.integer {
				return data{}, 0, fmt.Errorf("buffer says %d bytes, holds %d", *size.integer, len(body)-n)
			}
			return data{buffer: append([]byte{}, body[n:]...)}, 1 + length, nil
		}
		if len(body) < 1 {
			return data{}, 0, fmt.Errorf("package without NumElements")
		}
		count, rest := int(body[0]), body[1:]
		pkg := []data{}
		for range count {
			e, n, err := decodeData(rest)
			if err != nil {
				return data{}, 0, err
			}
			pkg = append(pkg, e)
			rest = rest[n:]
		}
		if len(rest) != 0 {
			return data{}, 0, fmt.Errorf("%d bytes left in a package of %d elements", len(rest), count)
		}
		return data{pkg: pkg}, 1 + length, nil
	}
	return data{}, 0, fmt.Errorf("opcode %#x is not a data object", b[0])
}

// decodePkgLength reads a PkgLength (20.2.4): the length it gives,
// counting itself, and how many bytes it took.
func decodePkgLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("no PkgLength")
	}
	follow := int(b[0] >> 6)
	if follow == 0 {
		return int(b[0] & 0x3F), 1, nil
	}
	if b[0]&0x30 != 0 {
		return 0, 0, fmt.Errorf("PkgLength lead byte %#x has bits 5-4 set", b[0])
	}
	if len(b) < 1+follow {
		return 0, 0, fmt.Errorf("PkgLength cut short")
	}
	n := int(b[0] & 0x0F)
	for i := 1; i <= follow; i++ {
		n |= int(b[i]) << (4 + 8*(i-1))
	}
	return n, 1 + follow, nil
}
