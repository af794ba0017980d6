package acpi

import (
	"encoding/binary"
	"fmt"
)

// Resource descriptors for _CRS (ACPI 6.5, 6.4 "Resource Data Types"):
// the bytes inside a ResourceTemplate buffer.

// Descriptor tags: small items (6.4.2) carry their length in the tag
// byte, large items (6.4.3) in the two bytes after it.
const (
	tagIRQNoFlags  = 0x22 // IRQ descriptor, length 2: no information byte
	tagIOPort      = 0x47 // I/O port descriptor, length 7
	tagEnd         = 0x79 // end tag, length 1
	tagMemory32Fix = 0x86 // 32-bit fixed memory range
	tagDWordAddr   = 0x87 // DWord address space
	tagWordAddr    = 0x88 // Word address space
	tagQWordAddr   = 0x8A // QWord address space
)

// Address space resource types (6.4.3.5, byte 3).
const (
	resourceMemory = 0
	resourceIO     = 1
	resourceBus    = 2
)

// General flags of an address space descriptor (6.4.3.5, byte 4). A bridge
// window is produced (bit 0, consumer, clear), positively decoded (bit 1
// clear), with both ends fixed.
const (
	addrMinFixed = 1 << 2 // _MIF
	addrMaxFixed = 1 << 3 // _MAF
	windowFlags  = addrMinFixed | addrMaxFixed
)

// Type-specific flags (6.4.3.5.1-3).
const (
	memReadWrite   = 1 << 0 // _RW
	memCacheable   = 1 << 1 // _MEM = 1: cacheable
	ioEntireRange  = 3      // _RNG: ISA and non-ISA ranges
	memory32Writes = 1      // Memory32Fixed: read-write
)

// ResourceTemplate ends descs with an end tag and wraps them in a Buffer,
// as ASL's ResourceTemplate() does. A checksum of 0 in the end tag means
// "treat as valid" (6.4.2.9).
func ResourceTemplate(descs ...[]byte) []byte {
	return Buffer(append(concat(descs), tagEnd, 0))
}

// IO is IO(Decode16, min, min, 1, length) (6.4.2.5): a fixed range of
// ports, 16-bit decoded.
func IO(base, length uint16) []byte {
	b := []byte{tagIOPort, 1} // information: bit 0, decodes 16 address bits
	b = binary.LittleEndian.AppendUint16(b, base)
	b = binary.LittleEndian.AppendUint16(b, base)
	return append(b, 1, byte(length))
}

// IRQNoFlags is IRQNoFlags() {irq} (6.4.2.1): an ISA interrupt,
// edge-triggered, active-high, exclusive.
func IRQNoFlags(irq int) []byte {
	if irq < 0 || irq > 15 {
		panic(fmt.Sprintf("IRQ descriptor for IRQ %d: ISA IRQs are 0-15", irq))
	}
	return binary.LittleEndian.AppendUint16([]byte{tagIRQNoFlags}, 1<<irq)
}

// Memory32Fixed is Memory32Fixed(ReadWrite, base, length) (6.4.3.4).
func Memory32Fixed(base, length uint32) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{tagMemory32Fix}, 9)
	b = append(b, memory32Writes)
	b = binary.LittleEndian.AppendUint32(b, base)
	return binary.LittleEndian.AppendUint32(b, length)
}

// WordBusNumber is a bridge's bus-number window [min, max] (6.4.3.5.3,
// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, ...)).
func WordBusNumber(min, max uint16) []byte {
	return wordAddress(resourceBus, 0, min, max)
}

// WordIO is a bridge's I/O window [min, max] (WordIO(ResourceProducer,
// MinFixed, MaxFixed, PosDecode, EntireRange, ...)).
func WordIO(min, max uint16) []byte {
	return wordAddress(resourceIO, ioEntireRange, min, max)
}

func wordAddress(kind, typeFlags byte, min, max uint16) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{tagWordAddr}, 13)
	b = append(b, kind, windowFlags, typeFlags)
	for _, v := range []uint16{0, min, max, 0, max - min + 1} { // granularity, min, max, translation, length
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// DWordMemory is a bridge's 32-bit memory window [base, base+length)
// (DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed,
// NonCacheable, ReadWrite, ...)): device registers, not cached.
func DWordMemory(base, length uint32) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{tagDWordAddr}, 23)
	b = append(b, resourceMemory, windowFlags, memReadWrite)
	for _, v := range []uint32{0, base, base + length - 1, 0, length} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// QWordMemory is a bridge's 64-bit memory window [base, base+length)
// (QWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed,
// Cacheable, ReadWrite, ...)), where prefetchable BARs go.
func QWordMemory(base, length uint64) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{tagQWordAddr}, 43)
	b = append(b, resourceMemory, windowFlags, memReadWrite|memCacheable)
	for _, v := range []uint64{0, base, base + length - 1, 0, length} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}
