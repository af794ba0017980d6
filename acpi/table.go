package acpi

import (
	"encoding/binary"
	"fmt"
)

// The system description table header every table but the RSDP and the
// FACS starts with (ACPI 6.5, 5.2.6, Table 5.4), 36 bytes.
const (
	headerSize     = 36
	offLength      = 4
	offRevision    = 8
	offChecksum    = 9
	offOEMID       = 10
	offOEMTableID  = 16
	offOEMRevision = 24
	offCreatorID   = 28
	offCreatorRev  = 32
)

// Who made the tables, as the headers say (OEMID is 6 bytes, the OEM
// table ID 8, the creator ID 4).
const (
	OEMID       = "GOVMM "
	OEMTableID  = "GOVMMVM "
	oemRevision = 1
	creatorID   = "GOVM"
	creatorRev  = 1
)

// Table is one ACPI table and where it goes in guest memory.
type Table struct {
	// Signature is the table's four-character signature ("FACP", "APIC",
	// ...), or "RSD PTR " for the RSDP.
	Signature string
	Addr      uint64
	Data      []byte
}

// Name is the signature without trailing spaces: "RSDP" for the RSDP.
func (t Table) Name() string {
	if t.Signature == rsdpSignature {
		return "RSDP"
	}
	return t.Signature
}

// sdt starts a table: the header with signature and revision, the length
// and checksum still zero (finish fills them).
func sdt(signature string, revision byte) []byte {
	if len(signature) != 4 {
		panic(fmt.Sprintf("ACPI signature %q is not 4 characters", signature))
	}
	b := make([]byte, headerSize)
	copy(b, signature)
	b[offRevision] = revision
	copy(b[offOEMID:], OEMID)
	copy(b[offOEMTableID:], OEMTableID)
	binary.LittleEndian.PutUint32(b[offOEMRevision:], oemRevision)
	copy(b[offCreatorID:], creatorID)
	binary.LittleEndian.PutUint32(b[offCreatorRev:], creatorRev)
	return b
}

// finish writes the table's length and its checksum.
func finish(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[offLength:], uint32(len(b)))
	b[offChecksum] = 0
	b[offChecksum] = checksum(b)
	return b
}

// checksum is the byte that makes the sum of b, with it, zero mod 256
// (5.2.6: "the entire table, including the checksum field, must add to
// zero").
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}

// Sum returns the sum of b's bytes mod 256: 0 for a table whose checksum
// is right.
func Sum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return sum
}

// Generic Address Structure (5.2.3.2, Table 5.1), 12 bytes.
const (
	gasSize     = 12
	gasSystemIO = 1 // address space ID: system I/O
	// Access sizes.
	accessByte = 1
	accessWord = 2
)

// gas encodes a register: its address space, width in bits, access size
// and address.
func gas(space, bitWidth, access byte, addr uint64) []byte {
	b := []byte{space, bitWidth, 0, access}
	return binary.LittleEndian.AppendUint64(b, addr)
}

func putU16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }
func putU32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func putU64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
