package kvm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// testRunSize is what KVM_GET_VCPU_MMAP_SIZE reports on x86: the kvm_run page,
// the port I/O data page (KVM_PIO_PAGE_OFFSET 1) and the coalesced MMIO page.
const testRunSize = 3 * 4096

// page is a fake struct kvm_run page that tests fill field by field.
type page []byte

func newPage(reason ExitReason) page {
	p := make(page, testRunSize)
	binary.LittleEndian.PutUint32(p[runExitReason:], uint32(reason))
	return p
}

func (p page) u8(off int, v uint8) page   { p[off] = v; return p }
func (p page) u16(off int, v uint16) page { binary.LittleEndian.PutUint16(p[off:], v); return p }
func (p page) u32(off int, v uint32) page { binary.LittleEndian.PutUint32(p[off:], v); return p }
func (p page) u64(off int, v uint64) page { binary.LittleEndian.PutUint64(p[off:], v); return p }
func (p page) put(off int, b ...byte) page {
	copy(p[off:], b)
	return p
}

func ioPage(out bool, port uint16, size uint8, count uint32, dataOff uint64, data ...byte) page {
	dir := uint8(0)
	if out {
		dir = ioDirectionOut
	}
	p := newPage(ExitIO).u8(runIODirection, dir).u8(runIOSize, size).
		u16(runIOPort, port).u32(runIOCount, count).u64(runIODataOffset, dataOff)
	if dataOff < testRunSize {
		p.put(int(dataOff), data...)
	}
	return p
}

func TestDecodeExit(t *testing.T) {
	tests := []struct {
		name     string
		run      page
		wantType string
		want     string
	}{
		{"out byte", ioPage(true, 0x3f8, 1, 1, 0x1000, 'A'),
			"*kvm.IOExit", "io out port 0x3f8 size 1 count 1 data 41"},
		{"in word", ioPage(false, 0x71, 2, 1, 0x1000, 0x34, 0x12),
			"*kvm.IOExit", "io in port 0x71 size 2 count 1 data 34 12"},
		{"rep outsb", ioPage(true, 0xe9, 1, 3, 0x1000, 'a', 'b', 'c'),
			"*kvm.IOExit", "io out port 0xe9 size 1 count 3 data 61 62 63"},
		{"mmio write", newPage(ExitMMIO).u64(runMMIOPhysAddr, 0xfee000b0).u32(runMMIOLen, 4).u8(runMMIOIsWrite, 1).put(runMMIOData, 1, 2, 3, 4, 5),
			"*kvm.MMIOExit", "mmio write 0xfee000b0 len 4 data 01 02 03 04"},
		{"mmio read", newPage(ExitMMIO).u64(runMMIOPhysAddr, 0xd0000000).u32(runMMIOLen, 8),
			"*kvm.MMIOExit", "mmio read 0xd0000000 len 8 data 00 00 00 00 00 00 00 00"},
		{"hlt", newPage(ExitHLT), "*kvm.HLTExit", "hlt"},
		{"shutdown", newPage(ExitShutdown), "*kvm.ShutdownExit", "shutdown (triple fault)"},
		{"intr", newPage(ExitIntr), "*kvm.InterruptedExit", "interrupted"},
		{"system event reset", newPage(ExitSystemEvent).u32(runSystemEventType, 2).u32(runSystemEventNData, 1).u64(runSystemEventData, 7),
			"*kvm.SystemEventExit", "system event reset data [0x7]"},
		{"system event no data", newPage(ExitSystemEvent).u32(runSystemEventType, 1),
			"*kvm.SystemEventExit", "system event shutdown data []"},
		{"system event unknown type", newPage(ExitSystemEvent).u32(runSystemEventType, 99),
			"*kvm.SystemEventExit", "system event system event 99 data []"},
		{"fail entry", newPage(ExitFailEntry).u64(runFailEntryReason, 0x80000021).u32(runFailEntryCPU, 3),
			"*kvm.FailEntryExit", "entry failed: hardware reason 0x80000021 on host cpu 3"},
		// int3 (0xcc), reported with instruction bytes as PVM does.
		{"emulation failure", newPage(ExitInternalError).u32(runInternalSuberror, 1).u32(runInternalNData, 3).
			u64(runInternalData, emulationFlagInstructionBytes).u8(runInternalData+8, 1).u8(runInternalData+9, 0xcc),
			"*kvm.InternalErrorExit", "internal error: emulation failure, instruction cc, data [0x1 0xcc01 0x0]"},
		{"delivery error", newPage(ExitInternalError).u32(runInternalSuberror, 3).u32(runInternalNData, 2).u64(runInternalData, 0x80000b0e).u64(runInternalData+8, 0x31),
			"*kvm.InternalErrorExit", "internal error: exit while delivering an event, data [0x80000b0e 0x31]"},
		{"debug", newPage(ExitDebug).u32(runDebugException, 1).u64(runDebugPC, 0x100010).u64(runDebugDR6, 0xffff4ff0).u64(runDebugDR7, 0x400),
			"*kvm.DebugExit", "debug: exception 1 at pc 0x100010 dr6 0xffff4ff0 dr7 0x400"},
		{"unknown with hardware reason", newPage(ExitUnknown).u64(runHWExitReason, 0x30),
			"*kvm.UnknownExit", "unhandled exit KVM_EXIT_UNKNOWN (hardware exit reason 0x30)"},
		{"known name, not decoded", newPage(ExitX86RDMSR),
			"*kvm.UnknownExit", "unhandled exit KVM_EXIT_X86_RDMSR"},
		{"number past the table", newPage(200),
			"*kvm.UnknownExit", "unhandled exit KVM_EXIT_200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e exits
			got, err := decodeExit(tt.run, &e)
			if err != nil {
				t.Fatalf("decodeExit(%s) error: %v", tt.name, err)
			}
			if gotType := fmt.Sprintf("%T", got); gotType != tt.wantType {
				t.Errorf("decodeExit(%s) type = %s, want %s", tt.name, gotType, tt.wantType)
			}
			if s := got.String(); s != tt.want {
				t.Errorf("decodeExit(%s) = %q, want %q", tt.name, s, tt.want)
			}
		})
	}
}

func TestDecodeExitErrors(t *testing.T) {
	tests := []struct {
		name    string
		run     []byte
		wantErr string
	}{
		{"short page", make([]byte, runHeaderSize-1), "kvm_run page is 287 bytes"},
		{"io data past the page", ioPage(true, 0x80, 4, 2, testRunSize-4), "lies outside"},
		{"io offset past the page", ioPage(true, 0x80, 1, 1, 1<<63), "lies outside"},
		{"io count huge", ioPage(false, 0x80, 255, 0xffffffff, 0x1000), "lies outside"},
		{"mmio too long", newPage(ExitMMIO).u32(runMMIOLen, 9), "want at most 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e exits
			got, err := decodeExit(tt.run, &e)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeExit(%s) = %v, %v, want error containing %q", tt.name, got, err, tt.wantErr)
			}
		})
	}
}

// TestExitDataAliasesPage checks that an IN or MMIO-read answer written into
// Data lands in the kvm_run page, where KVM reads it.
func TestExitDataAliasesPage(t *testing.T) {
	var e exits
	run := ioPage(false, 0x60, 1, 1, 0x1000)
	x, err := decodeExit(run, &e)
	if err != nil {
		t.Fatalf("decodeExit(in) error: %v", err)
	}
	x.(*IOExit).Data[0] = 0xab
	if run[0x1000] != 0xab {
		t.Errorf("after IOExit.Data[0] = 0xab, page[0x1000] = %#x, want 0xab", run[0x1000])
	}
	if c := cap(x.(*IOExit).Data); c != 1 {
		t.Errorf("cap(IOExit.Data) = %d, want 1", c)
	}

	run = newPage(ExitMMIO).u32(runMMIOLen, 2)
	x, err = decodeExit(run, &e)
	if err != nil {
		t.Fatalf("decodeExit(mmio read) error: %v", err)
	}
	copy(x.(*MMIOExit).Data, []byte{0x12, 0x34})
	if got := run[runMMIOData : runMMIOData+2]; !bytes.Equal(got, []byte{0x12, 0x34}) {
		t.Errorf("after MMIOExit.Data = 12 34, page mmio.data = % x, want 12 34", got)
	}
}

func TestDecodeExitCapsData(t *testing.T) {
	var e exits
	run := newPage(ExitInternalError).u32(runInternalSuberror, 1).u32(runInternalNData, 1000)
	x, err := decodeExit(run, &e)
	if err != nil {
		t.Fatalf("decodeExit(ndata 1000) error: %v", err)
	}
	if n := len(x.(*InternalErrorExit).Data); n != maxExitData {
		t.Errorf("len(InternalErrorExit.Data) with ndata 1000 = %d, want %d", n, maxExitData)
	}
}

func TestDecodeExitReusesValues(t *testing.T) {
	var e exits
	a, errA := decodeExit(newPage(ExitHLT), &e)
	b, errB := decodeExit(newPage(ExitHLT), &e)
	if errA != nil || errB != nil {
		t.Fatalf("decodeExit(hlt) errors: %v, %v", errA, errB)
	}
	if a != b {
		t.Errorf("decodeExit(hlt) twice = %p, %p, want the same value", a, b)
	}
}

func TestDecodeExitDoesNotAllocate(t *testing.T) {
	pages := []page{
		ioPage(true, 0x3f8, 1, 1, 0x1000, 'A'),
		newPage(ExitMMIO).u32(runMMIOLen, 4),
		newPage(ExitHLT),
		newPage(ExitSystemEvent).u32(runSystemEventNData, 2),
		newPage(ExitInternalError).u32(runInternalNData, 4),
		newPage(ExitDebug),
		newPage(ExitX86WRMSR),
	}
	var e exits
	for _, p := range pages {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := decodeExit(p, &e); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("decodeExit(%v) allocates %v times, want 0", ExitReason(binary.LittleEndian.Uint32(p[runExitReason:])), allocs)
		}
	}
}

func TestInstruction(t *testing.T) {
	tests := []struct {
		name string
		e    InternalErrorExit
		want []byte
	}{
		{"no flag", InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{0, 0x0f01, 0}}, nil},
		{"not emulation", InternalErrorExit{Suberror: InternalErrorSimulEx, Data: []uint64{1, 0xcc01, 0}}, nil},
		{"too little data", InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{1, 0xcc01}}, nil},
		{"xrstor64", InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{1, 0x2d_ae_0f_48_04, 0}}, []byte{0x48, 0x0f, 0xae, 0x2d}},
		{"15 bytes", InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{1, 0x070605040302010f, 0x0f0e0d0c0b0a0908}},
			[]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		{"size over 15 is clipped", InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{1, 0xff, 0}}, make([]byte, 15)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Instruction(); !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("Instruction(%s) = % x, want % x", tt.name, got, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ExitMMIO.String(), "KVM_EXIT_MMIO"},
		{ExitNotify.String(), "KVM_EXIT_NOTIFY"},
		{ExitReason(38).String(), "KVM_EXIT_38"},
		{CapImmediateExit.String(), "KVM_CAP_IMMEDIATE_EXIT"},
		{Cap(9999).String(), "KVM_CAP_9999"},
		{SystemEventCrash.String(), "crash"},
		{SystemEventType(0).String(), "system event 0"},
		{InternalErrorUnexpectedExitReason.String(), "unexpected hardware exit reason"},
		{InternalError(9).String(), "suberror 9"},
		{(&UnknownExit{Reason: ExitNotify}).Error(), "kvm: unhandled exit KVM_EXIT_NOTIFY"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}

func FuzzDecodeExit(f *testing.F) {
	f.Add([]byte(ioPage(true, 0x3f8, 1, 1, 0x1000, 'A')))
	f.Add([]byte(newPage(ExitMMIO).u32(runMMIOLen, 8)))
	f.Add([]byte(newPage(ExitInternalError).u32(runInternalSuberror, 1).u32(runInternalNData, 3).u64(runInternalData, 1)))
	f.Add([]byte(newPage(ExitSystemEvent).u32(runSystemEventNData, 16)))
	f.Fuzz(func(t *testing.T, run []byte) {
		var e exits
		x, err := decodeExit(run, &e)
		if err != nil {
			return
		}
		_ = x.String()
		switch x := x.(type) {
		case *IOExit:
			if len(x.Data) != int(x.Size)*int(x.Count) {
				t.Errorf("len(IOExit.Data) = %d, want Size*Count = %d", len(x.Data), int(x.Size)*int(x.Count))
			}
		case *InternalErrorExit:
			if len(x.Instruction()) > 15 {
				t.Errorf("len(Instruction()) = %d, want at most 15", len(x.Instruction()))
			}
		}
	})
}
