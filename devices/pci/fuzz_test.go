package pci

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/devices"
)

// fuzzOp decodes one guest access from 8 bytes:
//
//	b[0] bits 1:0  path: 0 CONFIG_DATA, 1 ECAM, 2 CONFIG_ADDRESS, 3 a BAR
//	b[0] bits 3:2  size: 1, 2, 4 or 8 bytes (8: ECAM and BARs only)
//	b[0] bit 4     write (else read)
//	b[1]           slot (mod 8, so the fuzzer often hits a device)
//	b[2..3]        offset (config register, or offset in the BAR)
//	b[4..7]        value (repeated for 8-byte writes)
type fuzzOp [8]byte

// maxFuzzOps bounds one input, so the checks after every op stay fast.
const maxFuzzOps = 64

// FuzzConfigAccess drives the bus with any sequence of configuration
// and BAR accesses and checks, after each, what must hold whatever the
// guest does: no panic; read-only header fields unchanged; every BAR's
// type bits fixed and its size bits zero; both mechanisms read the same;
// absent functions read all-ones; BARs are decoded exactly where and
// while the guest has them on; the INTx line matches the pin and the
// INTx-disable bit.
func FuzzConfigAccess(f *testing.F) {
	f.Add([]byte{})
	// Size BAR0 through mechanism #1, then enable memory and hit MAGIC.
	f.Add([]byte{
		0x1a, 1, 0x10, 0, 0xff, 0xff, 0xff, 0xff, // ECAM write BAR0 all-ones
		0x09, 1, 0x10, 0, 0, 0, 0, 0, // ECAM read BAR0
		0x1a, 1, 0x04, 0, 0x07, 0, 0, 0, // command: IO | MEM | BM
		0x0b, 1, 0x00, 0, 0, 0, 0, 0, // BAR0 read MAGIC
	})
	// Enable MSI-X, unmask vector 0 and raise it; raise INTx; 8-byte ECAM.
	f.Add([]byte{
		0x19, 1, 0x04, 0, 0x06, 0x04, 0, 0, // command: MEM | BM | INTx disable
		0x15, 1, 0x4a, 0, 0x00, 0x80, 0, 0, // MSI-X control (cap at 0x48, +2), 2 bytes: enable
		0x1b, 1, 0x0c, 0, 0, 0, 0, 0, // BAR write at 0x0c: ISR (acknowledge)
		0x1b, 1, 0x08, 0, 0, 0, 0, 0, // RAISE 0
		0x0d, 1, 0x00, 0, 0, 0, 0, 0, // ECAM 8-byte read
		0x1e, 0, 0x00, 0, 0x04, 0x08, 0, 0x80, // CONFIG_ADDRESS: slot 1 reg 4
		0x18, 0, 0x00, 0, 0x03, 0, 0, 0, // CONFIG_DATA 4-byte write
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := newTestBus(t)
		fns := []*Function{tb.Function(0), tb.Function(tb.slot)}
		slots := []int{0, tb.slot}
		var fixed [2][]byte
		for i, fn := range fns {
			fixed[i] = readOnlySnapshot(fn)
		}
		for n := 0; len(data) >= 8 && n < maxFuzzOps; n++ {
			var op fuzzOp
			copy(op[:], data)
			data = data[8:]
			tb.apply(op)
			for i, fn := range fns {
				checkFunction(t, tb, slots[i], fn, fixed[i])
			}
			checkAbsent(t, tb, op)
		}
	})
}

func (tb *testBus) apply(op fuzzOp) {
	path, size, write := op[0]&3, 1<<(op[0]>>2&3), op[0]&0x10 != 0
	slot := uint64(op[1] % 8)
	off := uint64(binary.LittleEndian.Uint16(op[2:]))
	v := binary.LittleEndian.Uint32(op[4:])
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(v >> (8 * (i % 4)))
	}
	switch path {
	case 0, 2:
		if size == 8 {
			size, p = 4, p[:4]
		}
		ports := tb.ConfigPorts()
		o := uint64(configDataOffset) + off%4
		if path == 2 {
			o = off % PortConfigSize
		}
		if o+uint64(size) > PortConfigSize {
			return // the bus would not hand this access to the device
		}
		if write {
			ports.Write(o, p)
		} else {
			ports.Read(o, p)
		}
	case 1:
		o := slot<<ECAMDeviceShift | off%ExtConfigSize
		if write {
			tb.ECAM().Write(o, p)
		} else {
			tb.ECAM().Read(o, p)
		}
	case 3:
		// Any of the test device's BARs, where it is decoded now.
		fn := tb.dev.Function()
		bar := int(op[1]>>3) % 3
		base, ok := fn.Mapped(bar)
		bus := tb.mmio
		if bar == 1 {
			bus = tb.io
		}
		if !ok {
			return
		}
		if write {
			bus.Write(base+off, p)
		} else {
			bus.Read(base+off, p)
		}
	}
}

// readOnlyRegs are the header bytes no write may change.
var readOnlyRegs = []struct{ off, n int }{
	{RegVendorID, 4}, {RegRevision, 4}, {RegHeaderType, 1}, {RegSubsysVendor, 4},
	{RegROMBase, 4}, {RegCapPtr, 1}, {RegInterruptPin, 1},
}

func readOnlySnapshot(fn *Function) []byte {
	var out []byte
	for _, r := range readOnlyRegs {
		p := make([]byte, r.n)
		fn.ReadConfig(uint64(r.off), p)
		out = append(out, p...)
	}
	if fn.msix != nil {
		p := make([]byte, 2)
		fn.ReadConfig(uint64(fn.msix.cap), p) // ID and next pointer
		out = append(out, p...)
		fn.ReadConfig(uint64(fn.msix.cap+2), p)
		out = append(out, p[0], p[1]&0x07) // table size
	}
	return out
}

func checkFunction(t *testing.T, tb *testBus, slot int, fn *Function, fixed []byte) {
	t.Helper()
	now := readOnlySnapshot(fn)
	for i := range fixed {
		if now[i] != fixed[i] {
			t.Fatalf("slot %d: read-only bytes changed from % x to % x", slot, fixed, now)
		}
	}
	// Both mechanisms read the same dwords.
	for reg := uint64(0); reg < ConfigSize; reg += 4 {
		if a, b := tb.cf8Read(slot, reg, 4), tb.ecamRead(slot, reg, 4); a != b {
			t.Fatalf("slot %d reg %#x: mechanism #1 reads %#x, ECAM %#x", slot, reg, a, b)
		}
	}
	cmd := uint16(tb.ecamRead(slot, RegCommand, 2))
	mapped := 0
	for i, bar := range fn.cfg.BARs {
		reg := tb.ecamRead(slot, RegBAR0+4*uint64(i), 4)
		switch bar.Kind {
		case BARNone:
			if i > 0 && fn.cfg.BARs[i-1].Kind == BARMem64 {
				if hi := uint64(reg) << 32; hi&(fn.cfg.BARs[i-1].Size-1) != 0 {
					t.Fatalf("slot %d BAR%d (upper half) = %#x has size bits set", slot, i, reg)
				}
				continue
			}
			if reg != 0 {
				t.Fatalf("slot %d unused BAR%d = %#x, want 0", slot, i, reg)
			}
		case BARIO:
			if reg&barIOFlagBits != barIOSpace || uint64(reg)&(bar.Size-1)&^barIOFlagBits != 0 {
				t.Fatalf("slot %d I/O BAR%d = %#x: type bits or size bits wrong (size %#x)", slot, i, reg, bar.Size)
			}
		default:
			want := uint32(0)
			if bar.Kind == BARMem64 {
				want = barMem64
			}
			if reg&barMemFlagBits != want || uint64(reg)&(bar.Size-1)&^barMemFlagBits != 0 {
				t.Fatalf("slot %d memory BAR%d = %#x: type bits or size bits wrong (size %#x)", slot, i, reg, bar.Size)
			}
		}
		base, on := fn.Mapped(i)
		if on {
			mapped++
			enabled := cmd&CmdMemory != 0
			if bar.Kind == BARIO {
				enabled = cmd&CmdIO != 0
			}
			if !enabled || base != fn.BARAddress(i) {
				t.Fatalf("slot %d BAR%d decoded at %#x, but command %#x, BAR address %#x", slot, i, base, cmd, fn.BARAddress(i))
			}
		}
	}
	if slot != 0 {
		// Every decoded BAR is on a bus; nothing else of ours is.
		n := len(tb.mmio.Ranges()) + len(tb.io.Ranges())
		if n != mapped {
			t.Fatalf("%d BARs decoded, but the buses hold %d ranges", mapped, n)
		}
		gsi := testINTxGSI(slot, 0)
		want := fn.intxAsserted() && cmd&CmdINTxDisable == 0
		if got := tb.irqs.level(gsi); got != want {
			t.Fatalf("INTx line %v, want %v (asserted %v, command %#x)", got, want, fn.intxAsserted(), cmd)
		}
		if st := tb.ecamRead(slot, RegStatus, 2); (st&StatusINTx != 0) != fn.intxAsserted() {
			t.Fatalf("status %#x does not show INTx asserted = %v", st, fn.intxAsserted())
		}
	}
}

// checkAbsent: whatever slot the op named, absent functions read all-ones.
func checkAbsent(t *testing.T, tb *testBus, op fuzzOp) {
	t.Helper()
	slot := int(op[1]%8) | 8 // never 0 or the test device's slot 1
	off := uint64(binary.LittleEndian.Uint16(op[2:])) % ConfigSize &^ 3
	if a, b := tb.cf8Read(slot, off, 4), tb.ecamRead(slot, off, 4); a != 0xFFFF_FFFF || b != 0xFFFF_FFFF {
		t.Fatalf("absent slot %d reg %#x reads %#x (cf8) and %#x (ECAM), want all-ones", slot, off, a, b)
	}
}

var _ devices.Device = barDevice{}
