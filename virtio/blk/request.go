package blk

import (
	"encoding/binary"
	"fmt"
)

// Request types (virtio 1.2, 5.2.6).
const (
	TypeIn          = 0  // VIRTIO_BLK_T_IN: read
	TypeOut         = 1  // VIRTIO_BLK_T_OUT: write
	TypeFlush       = 4  // VIRTIO_BLK_T_FLUSH
	TypeGetID       = 8  // VIRTIO_BLK_T_GET_ID
	TypeDiscard     = 11 // VIRTIO_BLK_T_DISCARD
	TypeWriteZeroes = 13 // VIRTIO_BLK_T_WRITE_ZEROES
)

// Status values (5.2.6).
const (
	StatusOK     = 0
	StatusIOErr  = 1
	StatusUnsupp = 2
)

const (
	// SectorSize is virtio-blk's unit of addressing, whatever blk_size
	// says (5.2.6: "sector ... is in units of 512 bytes").
	SectorSize = 512
	headerSize = 16 // le32 type, le32 reserved, le64 sector
	// IDBytes is the length of a GET_ID answer (5.2.6: 20 bytes).
	IDBytes = 20
	// segmentSize is one discard/write zeroes range (5.2.6): le64
	// sector, le32 num_sectors, le32 flags.
	segmentSize = 16
	// segmentUnmap is the flags bit that lets WRITE_ZEROES deallocate.
	segmentUnmap = 1
)

// Header is a request's fixed part.
type Header struct {
	Type   uint32
	Sector uint64
}

// ParseHeader reads a request header (5.2.6: struct virtio_blk_req's
// first 16 bytes).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < headerSize {
		return Header{}, fmt.Errorf("request header of %d bytes, want %d (5.2.6)", len(b), headerSize)
	}
	return Header{Type: binary.LittleEndian.Uint32(b), Sector: binary.LittleEndian.Uint64(b[8:])}, nil
}

// Segment is one range of a DISCARD or WRITE_ZEROES request.
type Segment struct {
	Sector  uint64
	Sectors uint32
	Unmap   bool
}

// ParseSegments reads the ranges of a DISCARD or WRITE_ZEROES request
// (5.2.6: struct virtio_blk_discard_write_zeroes); at most max of them.
func ParseSegments(b []byte, max int) ([]Segment, error) {
	if len(b) == 0 || len(b)%segmentSize != 0 {
		return nil, fmt.Errorf("%d bytes of ranges, want a non-zero multiple of %d (5.2.6)", len(b), segmentSize)
	}
	n := len(b) / segmentSize
	if n > max {
		return nil, fmt.Errorf("%d ranges, more than the %d the device offers (5.2.6.2)", n, max)
	}
	segs := make([]Segment, n)
	for i := range segs {
		s := b[i*segmentSize:]
		flags := binary.LittleEndian.Uint32(s[12:])
		if flags&^segmentUnmap != 0 {
			return nil, fmt.Errorf("range %d has reserved flag bits %#x set (5.2.6.2)", i, flags&^segmentUnmap)
		}
		segs[i] = Segment{Sector: binary.LittleEndian.Uint64(s), Sectors: binary.LittleEndian.Uint32(s[8:]), Unmap: flags&segmentUnmap != 0}
	}
	return segs, nil
}

// byteRange turns sectors into a byte offset and length, checking both
// against the disk's capacity without overflowing.
func byteRange(sector, sectors, capacity uint64) (off, n uint64, err error) {
	if sector > capacity || sectors > capacity-sector {
		return 0, 0, fmt.Errorf("sectors [%d, +%d) past the disk's %d", sector, sectors, capacity)
	}
	return sector * SectorSize, sectors * SectorSize, nil
}
