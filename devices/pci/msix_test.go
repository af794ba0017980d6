package pci

import (
	"testing"

	"github.com/govmm/govmm/devices"
)

// msixBus is a test bus with the test device's memory decoding on; it
// finds the MSI-X capability.
type msixBus struct {
	*testBus
	cap   uint64 // MSI-X capability offset
	table uint64 // guest-physical address of the table
	pba   uint64
}

func newMSIXBus(t *testing.T) *msixBus {
	t.Helper()
	tb := newTestBus(t)
	m := &msixBus{testBus: tb}
	for p := tb.ecamRead(tb.slot, RegCapPtr, 1); p != 0; p = tb.ecamRead(tb.slot, uint64(p)+1, 1) {
		if tb.ecamRead(tb.slot, uint64(p), 1) == CapIDMSIX {
			m.cap = uint64(p)
		}
	}
	if m.cap == 0 {
		t.Fatal("no MSI-X capability")
	}
	tableReg := tb.ecamRead(tb.slot, m.cap+4, 4)
	pbaReg := tb.ecamRead(tb.slot, m.cap+8, 4)
	f := tb.dev.Function()
	m.table = f.BARAddress(int(tableReg&7)) + uint64(tableReg&^7)
	m.pba = f.BARAddress(int(pbaReg&7)) + uint64(pbaReg&^7)
	tb.ecamWrite(tb.slot, RegCommand, 2, CmdMemory|CmdBusMaster)
	return m
}

func (m *msixBus) control(v uint32) { m.ecamWrite(m.slot, m.cap+2, 2, v) }

func (m *msixBus) entry(v int, addr uint64, data uint32, masked bool) {
	e := m.table + uint64(v)*msixEntrySize
	m.mmio.Write(e, leBytes(uint32(addr), 4))
	m.mmio.Write(e+4, leBytes(uint32(addr>>32), 4))
	m.mmio.Write(e+8, leBytes(data, 4))
	ctl := uint32(0)
	if masked {
		ctl = msixVectorMasked
	}
	m.mmio.Write(e+12, leBytes(ctl, 4))
}

func (m *msixBus) read32(addr uint64) uint32 {
	p := make([]byte, 4)
	m.mmio.Read(addr, p)
	return le(p)
}

func (m *msixBus) raise(v uint32) {
	m.mmio.Write(m.dev.Function().BARAddress(0)+TestDevRaise, leBytes(v, 4))
}

func TestMSIXCapability(t *testing.T) {
	m := newMSIXBus(t)
	if got := m.ecamRead(m.slot, m.cap+2, 2); got != TestDevVectorsN-1 {
		t.Errorf("message control = %#x, want table size %d-1, off, unmasked", got, TestDevVectorsN)
	}
	// Table size is read-only; enable and function mask are writable.
	m.control(0xFFFF)
	if got := m.ecamRead(m.slot, m.cap+2, 2); got != MSIXEnable|MSIXFunctionMask|(TestDevVectorsN-1) {
		t.Errorf("message control after writing all-ones = %#x", got)
	}
	// The table starts with every vector masked; the address's low bits
	// and vector control's reserved bits read as zero.
	for v := 0; v < TestDevVectorsN; v++ {
		if got := m.read32(m.table + uint64(v)*msixEntrySize + 12); got != msixVectorMasked {
			t.Errorf("vector %d control at reset = %#x, want masked", v, got)
		}
	}
	e := m.table + 3*msixEntrySize
	m.mmio.Write(e, leBytes(0xFEE0_1003, 4))
	m.mmio.Write(e+12, leBytes(0xFFFF_FFFE, 4))
	if got := m.read32(e); got != 0xFEE0_1000 {
		t.Errorf("vector 3 address after writing 0xfee01003 = %#x, want 0xfee01000", got)
	}
	if got := m.read32(e + 12); got != 0 {
		t.Errorf("vector 3 control after writing 0xfffffffe = %#x, want 0", got)
	}
	// An 8-byte access reads address and upper address together.
	m.mmio.Write(e+4, leBytes(0x1, 4))
	p := make([]byte, 8)
	m.mmio.Read(e, p)
	if got := uint64(le(p[:4])) | uint64(le(p[4:]))<<32; got != 0x1_FEE0_1000 {
		t.Errorf("8-byte read of vector 3's address = %#x, want 0x1fee01000", got)
	}
	// The PBA is read-only.
	m.mmio.Write(m.pba, leBytes(0xFF, 4))
	if got := m.read32(m.pba); got != 0 {
		t.Errorf("PBA after a write = %#x, want 0", got)
	}
}

// TestMSIXDelivery goes through the states a vector can be in.
func TestMSIXDelivery(t *testing.T) {
	m := newMSIXBus(t)
	f := m.dev.Function()
	vec := m.irqs.vectors
	if len(vec) != TestDevVectorsN {
		t.Fatalf("the bus allocated %d vectors, want %d", len(vec), TestDevVectorsN)
	}
	msg := devices.MSIMessage{Addr: 0xFEE0_0000, Data: 0x41}

	// MSI-X off: RAISE asserts INTx; no message.
	m.raise(2)
	if vec[2].sentCount() != 0 || !m.irqs.level(testINTxGSI(m.slot, 0)) {
		t.Fatalf("with MSI-X off: %d messages, INTx %v; want none and INTx", vec[2].sentCount(), m.irqs.level(testINTxGSI(m.slot, 0)))
	}
	m.mmio.Write(f.BARAddress(0)+TestDevISR, leBytes(1, 4))

	// On, vector masked: the pending bit is set, nothing is sent.
	m.control(MSIXEnable)
	m.entry(2, msg.Addr, msg.Data, true)
	m.raise(2)
	if vec[2].sentCount() != 0 || !f.MSIXPending(2) || m.read32(m.pba) != 1<<2 {
		t.Fatalf("masked vector: sent %d, pending %v, PBA %#x; want 0, true, 0x4", vec[2].sentCount(), f.MSIXPending(2), m.read32(m.pba))
	}
	if m.irqs.level(testINTxGSI(m.slot, 0)) {
		t.Errorf("INTx asserted while MSI-X is on")
	}
	// Unmasking sends the pending message and clears the bit.
	m.mmio.Write(m.table+2*msixEntrySize+12, leBytes(0, 4))
	if vec[2].sentCount() != 1 || f.MSIXPending(2) || vec[2].sent[0] != msg {
		t.Fatalf("after unmasking: sent %v, pending %v; want one %+v and no pending bit", vec[2].sent, f.MSIXPending(2), msg)
	}
	// Unmasked: sent at once.
	m.raise(2)
	if vec[2].sentCount() != 2 {
		t.Errorf("unmasked vector: sent %d, want 2", vec[2].sentCount())
	}
	// The function mask holds every vector; clearing it releases them.
	m.control(MSIXEnable | MSIXFunctionMask)
	m.raise(2)
	if vec[2].sentCount() != 2 || !f.MSIXPending(2) {
		t.Errorf("function-masked: sent %d, pending %v; want 2 and pending", vec[2].sentCount(), f.MSIXPending(2))
	}
	m.control(MSIXEnable)
	if vec[2].sentCount() != 3 || f.MSIXPending(2) {
		t.Errorf("after clearing the function mask: sent %d, pending %v; want 3, none", vec[2].sentCount(), f.MSIXPending(2))
	}
	// The route is programmed once per message, not per interrupt.
	if vec[2].sets != 1 {
		t.Errorf("SetMessage called %d times for one message, want 1", vec[2].sets)
	}
	// A new message reprograms it.
	m.entry(2, 0xFEE0_1000, 0x42, false)
	m.raise(2)
	if vec[2].sets != 2 || vec[2].sent[3].Data != 0x42 {
		t.Errorf("after changing the message: %d sets, last sent %+v; want 2 and data 0x42", vec[2].sets, vec[2].sent[3])
	}
	// A vector past the table is refused.
	if _, err := f.SendMSIX(TestDevVectorsN); err == nil {
		t.Errorf("SendMSIX(%d) = nil error, want ErrNoMSIX", TestDevVectorsN)
	}
	m.raise(TestDevVectorsN) // through the register: counted, no panic
	if f.IRQErrors() != 1 {
		t.Errorf("IRQErrors after RAISE of a vector past the table = %d, want 1", f.IRQErrors())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for i, v := range vec {
		if !v.closed {
			t.Errorf("vector %d not closed by Bus.Close", i)
		}
	}
}
