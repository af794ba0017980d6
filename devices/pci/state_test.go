package pci

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
)

// TestStateRestore programs a test device as a guest would, takes its
// state and restores it into a fresh bus: the new device decodes its BARs
// where the guest moved them, holds the INTx line as the old one did,
// keeps a masked vector's pending bit, and sends that vector's message
// (setting its route again) when the guest unmasks it.
func TestStateRestore(t *testing.T) {
	old := newMSIXBus(t)
	moved := uint64(0xC400_0000)
	old.ecamWrite(old.slot, RegBAR0, 4, uint32(moved))
	old.control(MSIXEnable)
	msg := devices.MSIMessage{Addr: 0xFEE0_2000, Data: 0x45}
	old.entry(5, msg.Addr, msg.Data, true)
	old.mmio.Write(moved+TestDevRaise, leBytes(5, 4)) // masked: pending
	old.control(0)                                    // MSI-X off: the next RAISE is INTx
	old.mmio.Write(moved+TestDevRaise, leBytes(0, 4))
	old.control(MSIXEnable)
	old.ConfigPorts().Write(0, leBytes(ConfigEnable|uint32(old.slot)<<configDeviceShift|RegBAR0, 4))

	// Through JSON, as a snapshot file would carry it.
	data, err := json.Marshal(struct {
		Bus BusState
		Dev TestDevState
	}{old.State(), old.dev.State()})
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Bus BusState
		Dev TestDevState
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}

	nb := newTestBus(t)
	nb.Restore(s.Bus)
	if err := nb.dev.Restore(s.Dev); err != nil {
		t.Fatalf("Restore() = %v", err)
	}
	if p := make([]byte, 4); nb.mmio.Read(moved+TestDevMagic, p) != true || le(p) != TestDevMagicValue {
		t.Errorf("restored BAR0 at %#x reads %#x, want MAGIC", moved, le(p))
	}
	if got := nb.dev.Count(); got != 2 {
		t.Errorf("restored COUNT = %d, want 2", got)
	}
	if !nb.irqs.level(testINTxGSI(nb.slot, 0)) {
		t.Errorf("restored device's INTx line is low, the old one held it high")
	}
	p := make([]byte, 4)
	nb.ConfigPorts().Read(configDataOffset, p) // CONFIG_ADDRESS came along
	if le(p) != uint32(moved) {
		t.Errorf("CONFIG_DATA after restoring CONFIG_ADDRESS reads %#x, want BAR0 %#x", le(p), moved)
	}
	f := nb.dev.Function()
	if !f.MSIXPending(5) {
		t.Fatalf("restored vector 5 lost its pending bit")
	}
	bar2, _ := f.Mapped(2)
	nb.mmio.Write(bar2+5*msixEntrySize+12, leBytes(0, 4)) // the guest unmasks it
	v := nb.irqs.vectors[5]
	if v.sentCount() != 1 || v.sent[0] != msg || v.sets != 1 {
		t.Errorf("after unmasking the restored vector: sent %v with %d route settings, want %+v once", v.sent, v.sets, msg)
	}

	// Another device's state is refused.
	hb := s.Dev.Function
	hb.Config[RegDeviceID] ^= 1
	if err := nb.dev.Restore(TestDevState{Function: hb}); err == nil || !strings.Contains(err.Error(), "another device's state") {
		t.Errorf("Restore(state with another device ID) = %v, want an error", err)
	}
}
