package acpi

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// A small AML encoder: each function returns the bytes of one term, and
// terms nest by passing those bytes on. References are to the ACPI
// Specification 6.5, chapter 20 ("AML Specification"). Only what govmm's
// DSDT needs is here: names, integers, strings, buffers, packages,
// scopes, devices and methods that return a value.

// AML opcodes (20.3, "AML Byte Stream Byte Values").
const (
	opZero        = 0x00
	opOne         = 0x01
	opName        = 0x08
	opBytePrefix  = 0x0A
	opWordPrefix  = 0x0B
	opDWordPrefix = 0x0C
	opString      = 0x0D
	opQWordPrefix = 0x0E
	opScope       = 0x10
	opBuffer      = 0x11
	opPackage     = 0x12
	opMethod      = 0x14
	opDualName    = 0x2E
	opMultiName   = 0x2F
	opExtPrefix   = 0x5B
	opRootChar    = 0x5C
	opParentChar  = 0x5E
	opReturn      = 0xA4
	opOnes        = 0xFF
	extOpDevice   = 0x82 // after opExtPrefix
)

// maxPkgLength is the largest PkgLength AML can encode: 28 bits.
const maxPkgLength = 1<<28 - 1

// pkgLength encodes the PkgLength of a body of n bytes (20.2.4): the
// length counts the PkgLength bytes themselves. Up to 63 it is one byte;
// beyond, the lead byte's bits 7-6 say how many bytes follow (1-3), its
// bits 3-0 hold the low nibble and each following byte 8 more bits.
func pkgLength(n int) ([]byte, error) {
	for extra := 0; extra <= 3; extra++ {
		total := n + 1 + extra
		switch {
		case extra == 0 && total <= 0x3F:
			return []byte{byte(total)}, nil
		case extra > 0 && total < 1<<(4+8*extra):
			b := make([]byte, 1+extra)
			b[0] = byte(extra<<6) | byte(total&0x0F)
			for i := 1; i <= extra; i++ {
				b[i] = byte(total >> (4 + 8*(i-1)))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("AML package of %d bytes is beyond PkgLength's %d", n, maxPkgLength)
}

// withPkgLength returns op, the PkgLength of body, and body.
func withPkgLength(op []byte, body []byte) []byte {
	pl, err := pkgLength(len(body))
	if err != nil {
		panic(err) // only a table of 256 MiB gets here: a bug in the caller
	}
	out := make([]byte, 0, len(op)+len(pl)+len(body))
	return append(append(append(out, op...), pl...), body...)
}

// NameString encodes an ACPI name path (20.2.2): an optional root "\" or
// parent prefixes "^", then NameSegs separated by dots. A segment is 1 to
// 4 characters, A-Z, 0-9 and "_", not starting with a digit; shorter ones
// are padded with "_" as ASL does. "\" alone is the root.
func NameString(path string) ([]byte, error) {
	var out []byte
	rest := path
	switch {
	case strings.HasPrefix(rest, `\`):
		out = append(out, opRootChar)
		rest = rest[1:]
	default:
		for strings.HasPrefix(rest, "^") {
			out = append(out, opParentChar)
			rest = rest[1:]
		}
	}
	if rest == "" {
		if len(out) == 0 {
			return nil, fmt.Errorf("empty ACPI name")
		}
		return append(out, opZero), nil // NullName
	}
	segs := strings.Split(rest, ".")
	if len(segs) > 255 {
		return nil, fmt.Errorf("ACPI name %q has %d segments, more than 255", path, len(segs))
	}
	switch len(segs) {
	case 1:
	case 2:
		out = append(out, opDualName)
	default:
		out = append(out, opMultiName, byte(len(segs)))
	}
	for _, s := range segs {
		seg, err := nameSeg(s)
		if err != nil {
			return nil, fmt.Errorf("ACPI name %q: %w", path, err)
		}
		out = append(out, seg[:]...)
	}
	return out, nil
}

// nameSeg pads one segment to four characters and checks them (20.2.2:
// LeadNameChar is A-Z or _, NameChar adds 0-9).
func nameSeg(s string) ([4]byte, error) {
	var seg [4]byte
	if len(s) == 0 || len(s) > 4 {
		return seg, fmt.Errorf("segment %q must be 1 to 4 characters", s)
	}
	for i := range seg {
		c := byte('_')
		if i < len(s) {
			c = s[i]
		}
		lead := c >= 'A' && c <= 'Z' || c == '_'
		if !lead && !(i > 0 && c >= '0' && c <= '9') {
			return seg, fmt.Errorf("segment %q: character %q is not allowed there (A-Z, _, and 0-9 after the first)", s, c)
		}
		seg[i] = c
	}
	return seg, nil
}

// mustName is NameString for the VMM's own constant names: an invalid one
// is a bug in govmm, not in any input.
func mustName(path string) []byte {
	b, err := NameString(path)
	if err != nil {
		panic(err)
	}
	return b
}

// Integer encodes v in the shortest form (20.2.3): ZeroOp, OneOp, OnesOp
// for all ones, else a byte, word, dword or qword prefix.
func Integer(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{opZero}
	case v == 1:
		return []byte{opOne}
	case v == ^uint64(0):
		return []byte{opOnes}
	case v <= 0xFF:
		return []byte{opBytePrefix, byte(v)}
	case v <= 0xFFFF:
		return binary.LittleEndian.AppendUint16([]byte{opWordPrefix}, uint16(v))
	case v <= 0xFFFF_FFFF:
		return binary.LittleEndian.AppendUint32([]byte{opDWordPrefix}, uint32(v))
	}
	return binary.LittleEndian.AppendUint64([]byte{opQWordPrefix}, v)
}

// String encodes an ASCII string constant (20.2.3, String: 0x01-0x7F
// characters and a NUL). Other bytes are a bug in the caller.
func String(s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] > 0x7F {
			panic(fmt.Sprintf("AML string %q: byte %#x is not 0x01-0x7f", s, s[i]))
		}
	}
	return append(append([]byte{opString}, s...), 0)
}

// EISAID encodes a PNP ID such as "PNP0A08" as the 32-bit compressed EISA
// ID ASL's EISAID() makes (19.6.35): three letters of 5 bits each
// ('A' is 1), then four hex digits, stored as bytes in that order.
func EISAID(id string) ([]byte, error) {
	if len(id) != 7 {
		return nil, fmt.Errorf("EISA ID %q: want 3 letters and 4 hex digits", id)
	}
	var l [3]uint32
	for i := range l {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return nil, fmt.Errorf("EISA ID %q: %q is not a capital letter", id, c)
		}
		l[i] = uint32(c - 0x40)
	}
	var digits uint32
	for _, c := range []byte(id[3:]) {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return nil, fmt.Errorf("EISA ID %q: %q is not a hex digit", id, c)
		}
		digits = digits<<4 | uint32(d)
	}
	b0 := byte(l[0]<<2 | l[1]>>3)
	b1 := byte((l[1]&7)<<5 | l[2])
	v := uint32(b0) | uint32(b1)<<8 | (digits>>8&0xFF)<<16 | (digits&0xFF)<<24
	return Integer(uint64(v)), nil
}

func mustEISAID(id string) []byte {
	b, err := EISAID(id)
	if err != nil {
		panic(err)
	}
	return b
}

// Name is Name(path, object) (19.6.90; DefName, 20.2.5.1).
func Name(path string, object []byte) []byte {
	return append(append([]byte{opName}, mustName(path)...), object...)
}

// Scope is Scope(path) { terms } (DefScope, 20.2.5.1).
func Scope(path string, terms ...[]byte) []byte {
	return withPkgLength([]byte{opScope}, append(mustName(path), concat(terms)...))
}

// Device is Device(path) { terms } (DefDevice, 20.2.5.2).
func Device(path string, terms ...[]byte) []byte {
	return withPkgLength([]byte{opExtPrefix, extOpDevice}, append(mustName(path), concat(terms)...))
}

// Method is Method(path, args, NotSerialized) { terms } (DefMethod,
// 20.2.5.2): MethodFlags bits 0-2 are the argument count.
func Method(path string, args int, terms ...[]byte) []byte {
	if args < 0 || args > 7 {
		panic(fmt.Sprintf("AML method %s: %d arguments, want 0-7", path, args))
	}
	body := append(mustName(path), byte(args))
	return withPkgLength([]byte{opMethod}, append(body, concat(terms)...))
}

// Return is Return(value) (DefReturn, 20.2.5.3).
func Return(value []byte) []byte { return append([]byte{opReturn}, value...) }

// Package is Package() { elements } (DefPackage, 20.2.5.4): at most 255
// elements, each a data object or a name.
func Package(elements ...[]byte) []byte {
	if len(elements) > 255 {
		panic(fmt.Sprintf("AML package of %d elements: DefPackage holds at most 255", len(elements)))
	}
	return withPkgLength([]byte{opPackage}, append([]byte{byte(len(elements))}, concat(elements)...))
}

// Buffer is Buffer() { data } (DefBuffer, 20.2.5.4): its size as an
// Integer, then the bytes.
func Buffer(data []byte) []byte {
	return withPkgLength([]byte{opBuffer}, append(Integer(uint64(len(data))), data...))
}

func concat(parts [][]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
