package testguest

import (
	"encoding/binary"
	"fmt"
)

// Setup header fields (Linux Documentation/arch/x86/boot.rst, "The real-mode
// kernel header"), as offsets into the bzImage file.
const (
	hdrSetupSects     = 0x1f1 // u8: setup sectors after the boot sector
	hdrSyssize        = 0x1f4 // u32: protected-mode part, in 16-byte units
	hdrVidMode        = 0x1fa // u16
	hdrBootFlag       = 0x1fe // u16: 0xAA55
	hdrJump           = 0x200 // 2 bytes: jmp over the header (real-mode entry)
	hdrMagic          = 0x202 // "HdrS"
	hdrVersion        = 0x206 // u16: boot protocol version
	hdrKernelVersion  = 0x20e // u16: version string offset - 0x200
	hdrLoadflags      = 0x211 // u8
	hdrCode32Start    = 0x214 // u32
	hdrInitrdAddrMax  = 0x22c // u32
	hdrKernelAlign    = 0x230 // u32
	hdrRelocatable    = 0x234 // u8
	hdrMinAlignment   = 0x235 // u8: log2
	hdrXloadflags     = 0x236 // u16
	hdrCmdlineSize    = 0x238 // u32
	hdrPayloadOffset  = 0x248 // u32: from the start of the protected-mode part
	hdrPayloadLength  = 0x24c // u32
	hdrPrefAddress    = 0x258 // u64
	hdrInitSize       = 0x260 // u32: memory the kernel needs from its load address
	realModeHalt      = 0x280 // where the jump at 0x200 lands: cli; hlt; jmp .-1
	versionString     = 0x300
	setupSects        = 1
	protocolVersion   = 0x020f
	loadedHigh        = 0x01   // loadflags: protected-mode part at 0x100000
	xlfKernel64       = 1 << 0 // xloadflags: has the 64-bit entry at +0x200
	xlfAbove4G        = 1 << 1 // xloadflags: may be loaded above 4 GiB
	kernelAlignment   = 0x200000
	cmdlineSize       = 4095
	initrdAddrMax     = 0x7fffffff
	bzImageVersionStr = "govmm testguest (64-bit boot protocol only)"
)

// BzImage assembles a Linux bzImage from the raw guest (linked to run at
// LoadAddr+Entry64Off), the memory it needs from LoadAddr including bss and
// stacks (memSize), and the payload (compressed data plus its 4-byte size).
//
// File layout:
//
//	0x000  boot sector (unused) with the first header fields at 0x1f1
//	0x200  setup sector: the rest of the header; its real-mode code halts
//	0x400  protected-mode part, loaded at LoadAddr:
//	       +0x000 32-bit entry (unsupported: halts)
//	       +0x200 the raw guest: the 64-bit entry
//	       +payload_offset the payload (a compressed guest.elf)
func BzImage(raw []byte, memSize uint64, payload []byte) ([]byte, error) {
	setup := make([]byte, (1+setupSects)*512)
	pm := make([]byte, Entry64Off, Entry64Off+len(raw)+len(payload)+32)
	copy(pm, []byte{0xfa, 0xf4, 0xeb, 0xfd}) // cli; hlt; jmp .-1 (hlt again)
	pm = append(pm, raw...)
	pm = pad(pm, 8)
	payloadOffset := len(pm)
	pm = append(pm, payload...)
	pm = pad(pm, 16)

	initSize := max(uint64(len(pm)), memSize)
	initSize = (initSize + 0xfff) &^ 0xfff
	if initSize > 1<<31 {
		return nil, fmt.Errorf("testguest: bzImage init_size %#x is too large", initSize)
	}

	le := binary.LittleEndian
	setup[hdrSetupSects] = setupSects
	le.PutUint32(setup[hdrSyssize:], uint32(len(pm)/16))
	le.PutUint16(setup[hdrVidMode:], 0xffff) // "normal" text mode
	le.PutUint16(setup[hdrBootFlag:], 0xaa55)
	setup[hdrJump], setup[hdrJump+1] = 0xeb, realModeHalt-(hdrJump+2) // jmp short
	copy(setup[realModeHalt:], []byte{0xfa, 0xf4, 0xeb, 0xfd})
	copy(setup[hdrMagic:], "HdrS")
	le.PutUint16(setup[hdrVersion:], protocolVersion)
	le.PutUint16(setup[hdrKernelVersion:], versionString-0x200)
	copy(setup[versionString:], bzImageVersionStr+"\x00")
	setup[hdrLoadflags] = loadedHigh
	le.PutUint32(setup[hdrCode32Start:], LoadAddr)
	le.PutUint32(setup[hdrInitrdAddrMax:], initrdAddrMax)
	le.PutUint32(setup[hdrKernelAlign:], kernelAlignment)
	setup[hdrRelocatable] = 0
	setup[hdrMinAlignment] = 21 // log2(kernel_alignment)
	le.PutUint16(setup[hdrXloadflags:], xlfKernel64|xlfAbove4G)
	le.PutUint32(setup[hdrCmdlineSize:], cmdlineSize)
	le.PutUint32(setup[hdrPayloadOffset:], uint32(payloadOffset))
	le.PutUint32(setup[hdrPayloadLength:], uint32(len(payload)))
	le.PutUint64(setup[hdrPrefAddress:], LoadAddr)
	le.PutUint32(setup[hdrInitSize:], uint32(initSize))
	return append(setup, pm...), nil
}

func pad(b []byte, align int) []byte {
	for len(b)%align != 0 {
		b = append(b, 0)
	}
	return b
}
