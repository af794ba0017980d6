package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The real-mode kernel header ("setup header") of a bzImage, as described in
// Documentation/arch/x86/boot.rst, section "THE REAL-MODE KERNEL HEADER".
// Offsets are from the start of the file, which are also the offsets in the
// zero page (zero-page.rst places the header at 0x1F1).
const (
	hdrStart           = 0x1F1 // setup_sects: first byte of the header
	offSetupSects      = 0x1F1 // u8
	offBootFlag        = 0x1FE // u16, 0xAA55
	offJump            = 0x200 // u16, a short jump; its byte at 0x201 sets the header's end
	offHeaderMagic     = 0x202 // u32, "HdrS"
	offVersion         = 0x206 // u16
	offTypeOfLoader    = 0x210 // u8
	offLoadFlags       = 0x211 // u8
	offCode32Start     = 0x214 // u32
	offRamdiskImage    = 0x218 // u32
	offRamdiskSize     = 0x21C // u32
	offHeapEndPtr      = 0x224 // u16
	offCmdLinePtr      = 0x228 // u32
	offInitrdAddrMax   = 0x22C // u32
	offKernelVersion   = 0x20E // u16, kernel_version: the string's offset minus 0x200
	offKernelAlignment = 0x230 // u32
	offRelocatable     = 0x234 // u8
	offMinAlignment    = 0x235 // u8
	offXLoadFlags      = 0x236 // u16
	offCmdlineSize     = 0x238 // u32
	offPayloadOffset   = 0x248 // u32
	offPayloadLength   = 0x24C // u32
	offPrefAddress     = 0x258 // u64
	offInitSize        = 0x260 // u32
	offHandoverOffset  = 0x264 // u32
	offKernelInfoOff   = 0x268 // u32 (protocol 2.15)
	hdrMinEnd          = 0x268 // end of handover_offset: every 2.12 header reaches it
	hdrMaxEnd          = 0x290 // edd_mbr_sig_buffer follows the header in the zero page

	bootFlagMagic   = 0xAA55
	headerMagic     = 0x5372_6448 // "HdrS" read little-endian
	minVersion      = 0x020C      // 2.12: xloadflags, needed for the 64-bit entry
	sectorSize      = 512
	defaultSetupSec = 4 // boot.rst: "if this field is 0, the real value is 4"
)

// Bits of loadflags (boot.rst, field "loadflags").
const (
	LoadedHigh uint8 = 1 << 0 // LOADED_HIGH: protected-mode code loads at 0x100000+
	KASLRFlag  uint8 = 1 << 1 // KASLR_FLAG: set by the kernel, not the loader
	QuietFlag  uint8 = 1 << 5 // QUIET_FLAG: suppress early messages
	CanUseHeap uint8 = 1 << 7 // CAN_USE_HEAP: heap_end_ptr is valid
)

// Bits of xloadflags (boot.rst, field "xloadflags").
const (
	XLFKernel64           uint16 = 1 << 0 // XLF_KERNEL_64: has the 64-bit entry at +0x200
	XLFCanBeLoadedAbove4G uint16 = 1 << 1 // XLF_CAN_BE_LOADED_ABOVE_4G
	XLFEFIHandover32      uint16 = 1 << 2 // XLF_EFI_HANDOVER_32
	XLFEFIHandover64      uint16 = 1 << 3 // XLF_EFI_HANDOVER_64
	XLFEFIKexec           uint16 = 1 << 4 // XLF_EFI_KEXEC
	XLF5Level             uint16 = 1 << 5 // XLF_5LEVEL
	XLF5LevelEnabled      uint16 = 1 << 6 // XLF_5LEVEL_ENABLED
)

// SetupHeader is the part of struct setup_header a loader reads or writes.
// Raw keeps the header bytes as found (0x1F1 up to the header's end) so
// fields this type does not name reach the zero page unchanged.
type SetupHeader struct {
	SetupSects       uint8  // 512-byte sectors of real-mode setup code (0 read as 4)
	Version          uint16 // boot protocol version, 0x020F for 2.15
	LoadFlags        uint8
	Code32Start      uint32
	InitrdAddrMax    uint32 // highest address the initrd may occupy
	KernelAlignment  uint32 // alignment a relocatable kernel needs
	Relocatable      bool   // relocatable_kernel
	MinAlignment     uint8  // log2 of the least alignment a relocatable kernel accepts
	XLoadFlags       uint16
	CmdlineSize      uint32 // most command-line bytes, terminating NUL excluded
	PayloadOffset    uint32 // from the start of the protected-mode code
	PayloadLength    uint32
	PrefAddress      uint64 // preferred load address
	InitSize         uint32 // bytes from the runtime start the kernel needs
	HandoverOffset   uint32
	KernelInfoOffset uint32
	// KernelVersion is the NUL-terminated string kernel_version points to
	// in the setup code, "" when it points nowhere in it. Linux writes
	// "<release> (<user>@<host>) #<build> ..." there
	// (arch/x86/boot/version.c).
	KernelVersion string
	Raw           []byte // header bytes from offset 0x1F1, as in the image
}

// maxKernelVersion bounds the kernel_version string kept; Linux's is
// about 100 bytes.
const maxKernelVersion = 256

// BzImage is a parsed bzImage: its header and the protected-mode code.
type BzImage struct {
	Header SetupHeader
	// SetupSize is the number of bytes before the protected-mode code:
	// the boot sector plus setup_sects sectors.
	SetupSize uint64
	// Kernel is the protected-mode code, what the loader copies to RAM.
	Kernel []byte
}

// ParseBzImage parses and validates the setup header of a bzImage. It
// accepts only kernels a 64-bit loader can start: boot protocol 2.12 or
// later with XLF_KERNEL_64 and LOADED_HIGH. Kernel aliases image.
func ParseBzImage(image []byte) (*BzImage, error) {
	size := uint64(len(image))
	if size < offHeaderMagic+4 {
		return nil, fmt.Errorf("bzImage: file is %d bytes, too short to hold a setup header (need at least %d): not a Linux bzImage", size, offHeaderMagic+4)
	}
	le := binary.LittleEndian
	if f := le.Uint16(image[offBootFlag:]); f != bootFlagMagic {
		return nil, fmt.Errorf("bzImage: boot_flag at 0x1FE is %#04x want 0xaa55: not a Linux bzImage", f)
	}
	if m := le.Uint32(image[offHeaderMagic:]); m != headerMagic {
		return nil, fmt.Errorf("bzImage: setup header magic is %#08x want \"HdrS\": not a Linux bzImage (or one older than boot protocol 2.00)", m)
	}
	// "The end of the setup header can be determined by ... 0x0202 + the
	// byte value at offset 0x0201" (boot.rst, "DETAILS OF HEADER FIELDS").
	hdrEnd := uint64(offHeaderMagic) + uint64(image[offJump+1])
	if hdrEnd > size {
		return nil, fmt.Errorf("bzImage: setup header ends at %#x, past the end of the %d-byte file: the image is truncated", hdrEnd, size)
	}
	version := le.Uint16(image[offVersion:])
	if version < minVersion {
		return nil, fmt.Errorf("bzImage: boot protocol %d.%02d, want 2.12 or later: the kernel lacks the 64-bit entry point; use a newer kernel", version>>8, version&0xff)
	}
	if hdrEnd < hdrMinEnd {
		return nil, fmt.Errorf("bzImage: setup header ends at %#x, before %#x where a protocol %d.%02d header must reach: the header is corrupt", hdrEnd, hdrMinEnd, version>>8, version&0xff)
	}
	rawEnd := min(hdrEnd, hdrMaxEnd)
	h := SetupHeader{
		SetupSects:      image[offSetupSects],
		Version:         version,
		LoadFlags:       image[offLoadFlags],
		Code32Start:     le.Uint32(image[offCode32Start:]),
		InitrdAddrMax:   le.Uint32(image[offInitrdAddrMax:]),
		KernelAlignment: le.Uint32(image[offKernelAlignment:]),
		Relocatable:     image[offRelocatable] != 0,
		MinAlignment:    image[offMinAlignment],
		XLoadFlags:      le.Uint16(image[offXLoadFlags:]),
		CmdlineSize:     le.Uint32(image[offCmdlineSize:]),
		PayloadOffset:   le.Uint32(image[offPayloadOffset:]),
		PayloadLength:   le.Uint32(image[offPayloadLength:]),
		PrefAddress:     le.Uint64(image[offPrefAddress:]),
		InitSize:        le.Uint32(image[offInitSize:]),
		HandoverOffset:  le.Uint32(image[offHandoverOffset:]),
		Raw:             append([]byte(nil), image[hdrStart:rawEnd]...),
	}
	if hdrEnd >= offKernelInfoOff+4 {
		h.KernelInfoOffset = le.Uint32(image[offKernelInfoOff:])
	}
	if h.XLoadFlags&XLFKernel64 == 0 {
		return nil, fmt.Errorf("bzImage: xloadflags %#x lacks XLF_KERNEL_64: the kernel lacks the 64-bit entry point (a 32-bit kernel?); build it for x86-64", h.XLoadFlags)
	}
	if h.LoadFlags&LoadedHigh == 0 {
		return nil, fmt.Errorf("bzImage: loadflags %#x lack LOADED_HIGH: a zImage that loads at 0x10000 is not supported; use a bzImage", h.LoadFlags)
	}
	if a := h.KernelAlignment; a == 0 || a&(a-1) != 0 {
		return nil, fmt.Errorf("bzImage: kernel_alignment is %#x, want a power of two: the header is corrupt", a)
	}
	sects := uint64(h.SetupSects)
	if sects == 0 {
		sects = defaultSetupSec
	}
	setupSize := (sects + 1) * sectorSize // at most 256*512: no overflow
	if setupSize > size {
		return nil, fmt.Errorf("bzImage: setup_sects %d puts the protected-mode code at %#x, past the end of the %d-byte file: the image is truncated", sects, setupSize, size)
	}
	h.KernelVersion = kernelVersion(image[:setupSize], le.Uint16(image[offKernelVersion:]))
	pmSize := size - setupSize
	// payload_offset and payload_length are 32-bit: their sum fits in 64 bits.
	if end := uint64(h.PayloadOffset) + uint64(h.PayloadLength); end > pmSize {
		return nil, fmt.Errorf("bzImage: payload_offset %#x + payload_length %#x runs past the %d-byte protected-mode code (file is %d bytes): the image is truncated or corrupt", h.PayloadOffset, h.PayloadLength, pmSize, size)
	}
	return &BzImage{Header: h, SetupSize: setupSize, Kernel: image[setupSize:]}, nil
}

// RuntimeStart is where the kernel will run (and decompress itself to) when
// loaded at load, following the algorithm in boot.rst, field "init_size":
// a relocatable kernel runs at load raised to pref_address and aligned up
// to kernel_alignment; any other kernel runs at pref_address (or at load
// when that is 0). ok is false if the result wraps.
func (h *SetupHeader) RuntimeStart(load uint64) (start uint64, ok bool) {
	if !h.Relocatable {
		if h.PrefAddress == 0 {
			return load, true
		}
		return h.PrefAddress, true
	}
	start = max(load, h.PrefAddress)
	a := uint64(h.KernelAlignment)
	if a == 0 {
		a = 1
	}
	up := start + a - 1
	if up < start {
		return 0, false
	}
	return up &^ (a - 1), true
}

// DefaultSetupHeader is a header for a kernel that brought none, such as an
// ELF vmlinux: protocol 2.15, LOADED_HIGH, a 64-bit entry, a 2 MiB aligned
// relocatable kernel, initrd below 2 GiB and a 64 KiB command line limit.
func DefaultSetupHeader() SetupHeader {
	return SetupHeader{
		Version:         0x020F,
		LoadFlags:       LoadedHigh,
		Code32Start:     uint32(KernelLoad),
		InitrdAddrMax:   0x7fff_ffff,
		KernelAlignment: 2 << 20,
		Relocatable:     true,
		MinAlignment:    21,
		XLoadFlags:      XLFKernel64 | XLFCanBeLoadedAbove4G,
		CmdlineSize:     CmdlineMax - 1,
	}
}

// kernelVersion reads the kernel_version string: "If set to a nonzero
// value, contains a pointer to a NUL-terminated human-readable kernel
// version number string, less 0x200" (boot.rst, field "kernel_version"),
// which lies in the setup code. It stops at the first NUL, the end of the
// setup code or maxKernelVersion bytes.
func kernelVersion(setup []byte, ptr uint16) string {
	start := uint64(ptr) + 0x200
	if ptr == 0 || start >= uint64(len(setup)) {
		return ""
	}
	s := setup[start:min(uint64(len(setup)), start+maxKernelVersion)]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s)
}
