package boot

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/memory"
)

// fakeBz describes a synthetic bzImage for tests: a real header, a payload
// at payloadOff in the protected-mode code, and filler up to pmSize.
type fakeBz struct {
	setupSects    uint8
	version       uint16
	loadFlags     uint8
	xloadFlags    uint16
	align         uint32
	relocatable   bool
	pref          uint64
	initSize      uint32
	cmdlineSize   uint32
	initrdMax     uint32
	payloadOff    uint32
	payload       []byte
	pmSize        int    // protected-mode bytes; at least payloadOff+len(payload)
	kernelVersion string // the kernel_version string, at 0x400 in the setup code; "" for none
}

// validBz is a header like a modern x86-64 kernel's.
func validBz() fakeBz {
	return fakeBz{
		setupSects:  27,
		version:     0x020F,
		loadFlags:   LoadedHigh,
		xloadFlags:  XLFKernel64 | XLFCanBeLoadedAbove4G,
		align:       2 << 20,
		relocatable: true,
		pref:        16 << 20,
		initSize:    8 << 20,
		cmdlineSize: 2048,
		initrdMax:   0x7fff_ffff,
		payloadOff:  0x100,
		payload:     []byte{0x1f, 0x8b, 1, 2, 3},
		pmSize:      0x4000,
	}
}

func (f fakeBz) build() []byte {
	sects := int(f.setupSects)
	if sects == 0 {
		sects = 4
	}
	setup := (sects + 1) * 512
	pm := max(f.pmSize, int(f.payloadOff)+len(f.payload))
	b := make([]byte, setup+pm)
	le := binary.LittleEndian
	b[offSetupSects] = f.setupSects
	le.PutUint16(b[offBootFlag:], bootFlagMagic)
	b[offJump], b[offJump+1] = 0xeb, 0x26c-0x202 // jmp over a 2.15 header
	copy(b[offHeaderMagic:], "HdrS")
	le.PutUint16(b[offVersion:], f.version)
	b[offLoadFlags] = f.loadFlags
	le.PutUint32(b[offCode32Start:], 0x100000)
	le.PutUint32(b[offInitrdAddrMax:], f.initrdMax)
	le.PutUint32(b[offKernelAlignment:], f.align)
	if f.relocatable {
		b[offRelocatable] = 1
	}
	b[offMinAlignment] = 21
	le.PutUint16(b[offXLoadFlags:], f.xloadFlags)
	le.PutUint32(b[offCmdlineSize:], f.cmdlineSize)
	le.PutUint32(b[offPayloadOffset:], f.payloadOff)
	le.PutUint32(b[offPayloadLength:], uint32(len(f.payload)))
	le.PutUint64(b[offPrefAddress:], f.pref)
	le.PutUint32(b[offInitSize:], f.initSize)
	if f.kernelVersion != "" {
		le.PutUint16(b[offKernelVersion:], 0x400-0x200)
		copy(b[0x400:], f.kernelVersion+"\x00")
	}
	copy(b[setup+int(f.payloadOff):], f.payload)
	// Mark the protected-mode code so tests can find where it was loaded.
	copy(b[setup:], "PMCODE")
	return b
}

// fakeSegment is one PT_LOAD segment of a synthetic ELF.
type fakeSegment struct {
	vaddr, paddr uint64
	data         []byte
	memsz        uint64
}

// buildELF makes a minimal ELF64 x86-64 executable (System V ABI gABI,
// "ELF Header" and "Program Header").
func buildELF(entry uint64, segs ...fakeSegment) []byte {
	const ehsize, phsize = 64, 56
	off := uint64(ehsize + phsize*len(segs))
	b := make([]byte, off)
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // ELFCLASS64, little-endian, EV_CURRENT
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 62)   // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], entry)
	le.PutUint64(b[32:], ehsize) // e_phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], uint16(len(segs)))
	for i, s := range segs {
		p := b[ehsize+phsize*i:]
		le.PutUint32(p[0:], 1) // PT_LOAD
		le.PutUint32(p[4:], 7)
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], s.vaddr)
		le.PutUint64(p[24:], s.paddr)
		le.PutUint64(p[32:], uint64(len(s.data)))
		le.PutUint64(p[40:], max(s.memsz, uint64(len(s.data))))
		le.PutUint64(p[48:], 0x1000)
		b = append(b, s.data...)
		off += uint64(len(s.data))
	}
	return b
}

// newRAM makes guest memory of size bytes from address 0, split around the
// MMIO hole like the real thing. Large sizes cost nothing until touched.
func newRAM(t *testing.T, size uint64) *memory.Memory {
	t.Helper()
	m, err := memory.New(size)
	if err != nil {
		t.Fatalf("memory.New(%#x) = %v", size, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("closing guest memory: %v", err)
		}
	})
	return m
}
