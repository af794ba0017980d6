package pci

import (
	"testing"

	"github.com/govmm/govmm/devices"
)

// TestHeaders reads the header fields a guest's bus scan reads, through
// both mechanisms.
func TestHeaders(t *testing.T) {
	tb := newTestBus(t)
	tests := []struct {
		name      string
		slot      int
		reg       uint64
		size      int
		want      uint32
		wantExact bool
	}{
		{"host bridge vendor", 0, RegVendorID, 2, VendorID, true},
		{"host bridge device", 0, RegDeviceID, 2, HostBridgeDeviceID, true},
		{"host bridge class", 0, RegRevision, 4, ClassHostBridge << 8, true},
		{"host bridge header type", 0, RegHeaderType, 1, HeaderTypeDevice, true},
		{"host bridge has no capabilities", 0, RegStatus, 2, 0, true},
		{"host bridge has no INTx pin", 0, RegInterruptPin, 1, PinNone, true},
		{"test device IDs", tb.slot, RegVendorID, 4, TestDevDeviceID<<16 | VendorID, true},
		{"test device class", tb.slot, RegClass + 2, 1, ClassOther >> 16, true},
		{"test device subsystem", tb.slot, RegSubsysVendor, 4, TestDevDeviceID<<16 | VendorID, true},
		{"test device status has a capability list", tb.slot, RegStatus, 2, StatusCapList, true},
		{"test device pin", tb.slot, RegInterruptPin, 1, PinA, true},
		{"test device line is its GSI", tb.slot, RegInterruptLine, 1, testINTxGSI(tb.slot, 0), true},
		{"test device has no ROM", tb.slot, RegROMBase, 4, 0, true},
	}
	for _, tt := range tests {
		for _, mech := range []string{"cf8", "ecam"} {
			var got uint32
			if mech == "cf8" {
				got = tb.cf8Read(tt.slot, tt.reg, tt.size)
			} else {
				got = tb.ecamRead(tt.slot, tt.reg, tt.size)
			}
			if got != tt.want {
				t.Errorf("%s: %s read of slot %d reg %#x size %d = %#x, want %#x", tt.name, mech, tt.slot, tt.reg, tt.size, got, tt.want)
			}
		}
	}
}

// TestAbsentReadsAllOnes: nothing answers for an empty slot, another bus,
// another function, or mechanism #1 with the enable bit clear.
func TestAbsentReadsAllOnes(t *testing.T) {
	tb := newTestBus(t)
	tests := []struct {
		name string
		off  uint64 // ECAM offset
	}{
		{"empty slot", 5 << ECAMDeviceShift},
		{"bus 1", 1<<ECAMBusShift | uint64(tb.slot)<<ECAMDeviceShift},
		{"function 1", uint64(tb.slot)<<ECAMDeviceShift | 1<<ECAMFuncShift},
		{"last slot of bus 255", 0xFF<<ECAMBusShift | 31<<ECAMDeviceShift | 7<<ECAMFuncShift | 0xFFC},
	}
	for _, tt := range tests {
		p := make([]byte, 4)
		tb.ECAM().Read(tt.off, p)
		if got := le(p); got != 0xFFFF_FFFF {
			t.Errorf("%s: ECAM read at %#x = %#x, want all-ones", tt.name, tt.off, got)
		}
		tb.ECAM().Write(tt.off, []byte{0, 0, 0, 0}) // dropped, no panic
	}
	if got := tb.cf8Read(5, 0, 4); got != 0xFFFF_FFFF {
		t.Errorf("cf8 read of empty slot 5 = %#x, want all-ones", got)
	}
	ports := tb.ConfigPorts()
	ports.Write(0, leBytes(uint32(tb.slot)<<configDeviceShift, 4)) // enable bit clear
	p := make([]byte, 4)
	ports.Read(configDataOffset, p)
	if got := le(p); got != 0xFFFF_FFFF {
		t.Errorf("cf8 read with the enable bit clear = %#x, want all-ones", got)
	}
}

// TestConfigAddressRegister: CONFIG_ADDRESS keeps what Linux's probe
// (pci_check_type1) writes, and only 32-bit accesses reach it.
func TestConfigAddressRegister(t *testing.T) {
	tb := newTestBus(t)
	ports := tb.ConfigPorts()
	tests := []struct {
		write, want uint32
	}{
		{0x8000_0000, 0x8000_0000},
		{0xFFFF_FFFF, 0x80FF_FFFC}, // reserved bits 30:24 and 1:0 read as zero
		{0x0000_0800, 0x0000_0800},
	}
	for _, tt := range tests {
		ports.Write(0, leBytes(tt.write, 4))
		p := make([]byte, 4)
		ports.Read(0, p)
		if got := le(p); got != tt.want {
			t.Errorf("CONFIG_ADDRESS after writing %#x = %#x, want %#x", tt.write, got, tt.want)
		}
	}
	ports.Write(0, leBytes(0x8000_0000, 4))
	ports.Write(3, []byte{0x01}) // outb 0xCFB: not CONFIG_ADDRESS
	p := make([]byte, 4)
	ports.Read(0, p)
	if got := le(p); got != 0x8000_0000 {
		t.Errorf("CONFIG_ADDRESS after a byte write to 0xCFB = %#x, want 0x80000000", got)
	}
}

// TestMechanismsAgree: every byte of every slot reads the same through
// mechanism #1 and ECAM, at every width, and a write through one is seen
// through the other.
func TestMechanismsAgree(t *testing.T) {
	tb := newTestBus(t)
	for _, slot := range []int{0, tb.slot, 7} {
		for reg := uint64(0); reg < ConfigSize; reg++ {
			for _, n := range []int{1, 2, 4} {
				if int(reg&3)+n > 4 {
					continue // mechanism #1 cannot cross a dword
				}
				if a, b := tb.cf8Read(slot, reg, n), tb.ecamRead(slot, reg, n); a != b {
					t.Fatalf("slot %d reg %#x size %d: cf8 %#x, ecam %#x", slot, reg, n, a, b)
				}
			}
		}
	}
	tb.cf8Write(tb.slot, RegLatencyTimer, 1, 0x40)
	if got := tb.ecamRead(tb.slot, RegLatencyTimer, 1); got != 0x40 {
		t.Errorf("latency timer written through cf8 reads %#x through ECAM, want 0x40", got)
	}
	tb.ecamWrite(tb.slot, RegInterruptLine, 1, 0x0b)
	if got := tb.cf8Read(tb.slot, RegInterruptLine, 1); got != 0x0b {
		t.Errorf("interrupt line written through ECAM reads %#x through cf8, want 0x0b", got)
	}
	// Past the first 256 bytes ECAM reads zeros: no extended capabilities.
	if got := tb.ecamRead(tb.slot, 0x100, 4); got != 0 {
		t.Errorf("ECAM read at 0x100 = %#x, want 0", got)
	}
}

// TestReadOnlyFields writes all-ones over the whole space of each function
// and checks the fields software must not change.
func TestReadOnlyFields(t *testing.T) {
	tb := newTestBus(t)
	for _, slot := range []int{0, tb.slot} {
		before := make([]uint32, ConfigSize/4)
		for i := range before {
			before[i] = tb.ecamRead(slot, uint64(4*i), 4)
		}
		for reg := uint64(0); reg < ConfigSize; reg += 4 {
			tb.ecamWrite(slot, reg, 4, 0xFFFF_FFFF)
		}
		for _, reg := range []uint64{RegVendorID, RegRevision, RegSubsysVendor, RegROMBase, RegCapPtr} {
			if got := tb.ecamRead(slot, reg, 4); got != before[reg/4] {
				t.Errorf("slot %d reg %#x after writing all-ones = %#x, want %#x (read-only)", slot, reg, got, before[reg/4])
			}
		}
		if got, want := tb.ecamRead(slot, RegHeaderType, 1), before[RegCacheLineSize/4]>>16&0xFF; got != want {
			t.Errorf("slot %d header type after writing all-ones = %#x, want %#x", slot, got, want)
		}
		if got, want := tb.ecamRead(slot, RegInterruptPin, 1), before[RegInterruptLine/4]>>8&0xFF; got != want {
			t.Errorf("slot %d interrupt pin after writing all-ones = %#x, want %#x", slot, got, want)
		}
		if got := tb.ecamRead(slot, RegCommand, 2); got != cmdWritable {
			t.Errorf("slot %d command after writing all-ones = %#x, want the writable bits %#x", slot, got, cmdWritable)
		}
		// Writing 1s to the status register clears the error bits and
		// leaves the read-only ones.
		if got, want := tb.ecamRead(slot, RegStatus, 2), before[RegCommand/4]>>16; got != want {
			t.Errorf("slot %d status after writing all-ones = %#x, want %#x", slot, got, want)
		}
	}
}

// TestBARSizing sizes every BAR of the test device the way an OS does:
// write all-ones, read the mask back, restore.
func TestBARSizing(t *testing.T) {
	tb := newTestBus(t)
	tests := []struct {
		bar       int
		wantMask  uint32 // what the BAR reads after all-ones
		wantFlags uint32
	}{
		{0, ^uint32(testDevRegsSize - 1), 0}, // a 32-bit memory BAR: type bits 0
		{1, ^uint32(testDevIOSize-1)&^barIOFlagBits | barIOSpace, barIOSpace},
		{2, ^uint32(testDevMSIXSize-1)&^barMemFlagBits | barMem64, barMem64},
		{3, 0xFFFF_FFFF, 0}, // the upper half of the 64-bit BAR: every bit is address
		{4, 0, 0},
		{5, 0, 0},
	}
	for _, tt := range tests {
		reg := RegBAR0 + 4*uint64(tt.bar)
		orig := tb.cf8Read(tb.slot, reg, 4)
		if orig&0xF != tt.wantFlags&0xF && tt.bar != 3 {
			t.Errorf("BAR%d = %#x, want type bits %#x", tt.bar, orig, tt.wantFlags)
		}
		tb.cf8Write(tb.slot, reg, 4, 0xFFFF_FFFF)
		if got := tb.cf8Read(tb.slot, reg, 4); got != tt.wantMask {
			t.Errorf("BAR%d after writing all-ones = %#x, want %#x", tt.bar, got, tt.wantMask)
		}
		tb.cf8Write(tb.slot, reg, 4, orig)
		if got := tb.cf8Read(tb.slot, reg, 4); got != orig {
			t.Errorf("BAR%d after restoring %#x = %#x", tt.bar, orig, got)
		}
	}
	// The size an OS computes from BAR0's mask.
	tb.cf8Write(tb.slot, RegBAR0, 4, 0xFFFF_FFFF)
	if size := ^(tb.cf8Read(tb.slot, RegBAR0, 4) &^ 0xF) + 1; size != testDevRegsSize {
		t.Errorf("BAR0 size from its mask = %#x, want %#x", size, testDevRegsSize)
	}
}

// TestBARPlacement: the bus places each BAR in its window, aligned to its
// size, as firmware would.
func TestBARPlacement(t *testing.T) {
	tb := newTestBus(t)
	second, err := NewTestDev()
	if err != nil {
		t.Fatal(err)
	}
	slot2, err := tb.Add(second.Function())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, slot := range []int{tb.slot, slot2} {
		f := tb.Function(slot)
		for i, bar := range f.Config().BARs {
			if bar.Kind == BARNone {
				continue
			}
			a := f.BARAddress(i)
			win := map[BARKind]Window{BARMem32: testMMIO32, BARMem64: testMMIO64, BARIO: testIO}[bar.Kind]
			if a < win.Start || a+bar.Size > win.end() || a%bar.Size != 0 || seen[a] {
				t.Errorf("slot %d BAR%d (%v, %#x bytes) placed at %#x: want an unused, aligned address in [%#x, %#x)", slot, i, bar.Kind, bar.Size, a, win.Start, win.end())
			}
			seen[a] = true
		}
	}
}

// TestBARDecoding: a BAR is on govmm's bus exactly while the guest has
// decoding on, at the address it gave.
func TestBARDecoding(t *testing.T) {
	tb := newTestBus(t)
	f := tb.dev.Function()
	bar0, bar1, bar2 := f.BARAddress(0), f.BARAddress(1), f.BARAddress(2)
	read32 := func(bus *devices.Bus, addr uint64) (uint32, bool) {
		p := make([]byte, 4)
		ok := bus.Read(addr, p)
		return le(p), ok
	}
	if _, ok := read32(tb.mmio, bar0); ok {
		t.Fatalf("BAR0 at %#x decoded before the guest enabled memory decoding", bar0)
	}
	tb.cf8Write(tb.slot, RegCommand, 2, CmdMemory)
	if v, ok := read32(tb.mmio, bar0+TestDevMagic); !ok || v != TestDevMagicValue {
		t.Errorf("MAGIC at BAR0 %#x after enabling memory = %#x, %v, want %#x", bar0, v, ok, TestDevMagicValue)
	}
	if v, ok := read32(tb.mmio, bar2+12); !ok || v != msixVectorMasked {
		t.Errorf("MSI-X vector 0 control at BAR2 %#x = %#x, %v, want masked", bar2, v, ok)
	}
	if _, ok := read32(tb.io, bar1); ok {
		t.Errorf("I/O BAR1 at %#x decoded without CmdIO", bar1)
	}
	tb.cf8Write(tb.slot, RegCommand, 2, CmdMemory|CmdIO)
	if v, ok := read32(tb.io, bar1+TestDevVectors); !ok || v != TestDevVectorsN {
		t.Errorf("VECTORS at I/O BAR1 %#x = %#x, %v, want %d", bar1, v, ok, TestDevVectorsN)
	}
	// Move BAR0: the old address stops answering, the new one answers.
	moved := uint64(0xC800_0000)
	tb.cf8Write(tb.slot, RegBAR0, 4, uint32(moved))
	if _, ok := read32(tb.mmio, bar0); ok {
		t.Errorf("BAR0's old address %#x still decoded after the move", bar0)
	}
	if v, ok := read32(tb.mmio, moved); !ok || v != TestDevMagicValue {
		t.Errorf("MAGIC at BAR0's new address %#x = %#x, %v", moved, v, ok)
	}
	if got, ok := f.Mapped(0); !ok || got != moved {
		t.Errorf("Mapped(0) = %#x, %v, want %#x, true", got, ok, moved)
	}
	// Move the 64-bit BAR above 4 GiB, one half at a time.
	high := uint64(0x2_4000_0000)
	tb.ecamWrite(tb.slot, RegBAR0+12, 4, uint32(high>>32))
	tb.ecamWrite(tb.slot, RegBAR0+8, 4, uint32(high)|barMem64)
	if _, ok := read32(tb.mmio, high+12); !ok {
		t.Errorf("BAR2 not decoded at %#x after moving it", high)
	}
	// Decoding off: nothing answers.
	tb.cf8Write(tb.slot, RegCommand, 2, 0)
	for _, a := range []struct {
		bus  *devices.Bus
		addr uint64
	}{{tb.mmio, moved}, {tb.mmio, high}, {tb.io, bar1}} {
		if _, ok := read32(a.bus, a.addr); ok {
			t.Errorf("%#x still decoded after decoding was turned off", a.addr)
		}
	}
	// A BAR put over another device's range is not decoded, and counted.
	if err := tb.mmio.Register(0xD000_0000, 0x1000, "other", zeroDevice{}); err != nil {
		t.Fatal(err)
	}
	tb.cf8Write(tb.slot, RegBAR0, 4, 0xD000_0000)
	tb.cf8Write(tb.slot, RegCommand, 2, CmdMemory)
	if _, ok := f.Mapped(0); ok || tb.Undecoded.Load() == 0 {
		t.Errorf("BAR0 over another device: Mapped = %v, Undecoded = %d, want unmapped and counted", ok, tb.Undecoded.Load())
	}
	if err := tb.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if len(tb.mmio.Ranges()) != 1 { // "other" only
		t.Errorf("MMIO ranges after Close = %v, want only the other device", tb.mmio.Ranges())
	}
}

// TestCapabilityList walks the test device's capabilities.
func TestCapabilityList(t *testing.T) {
	tb := newTestBus(t)
	var ids []uint32
	for p := tb.ecamRead(tb.slot, RegCapPtr, 1); p != 0; p = tb.ecamRead(tb.slot, uint64(p)+1, 1) {
		if p < HeaderSize || p%4 != 0 || len(ids) > 48 {
			t.Fatalf("capability pointer %#x: want a dword-aligned offset past the header, and a list that ends", p)
		}
		ids = append(ids, tb.ecamRead(tb.slot, uint64(p), 1))
		if ids[len(ids)-1] == CapIDVendor {
			n := tb.ecamRead(tb.slot, uint64(p)+2, 1)
			var s []byte
			for i := uint64(3); i < uint64(n); i++ {
				s = append(s, byte(tb.ecamRead(tb.slot, uint64(p)+i, 1)))
			}
			if string(s) != "govmm" {
				t.Errorf("vendor capability holds %q, want \"govmm\"", s)
			}
		}
	}
	if len(ids) != 2 || ids[0] != CapIDVendor || ids[1] != CapIDMSIX {
		t.Errorf("capability IDs = %#x, want [0x9 0x11]", ids)
	}
}

// TestINTx raises the test device's INTx and acknowledges it.
func TestINTx(t *testing.T) {
	tb := newTestBus(t)
	f := tb.dev.Function()
	gsi := testINTxGSI(tb.slot, 0)
	regs := tb.dev.Function().Config().BARs[0].Dev
	regs.Write(TestDevRaise, leBytes(0, 4))
	if !tb.irqs.level(gsi) {
		t.Fatalf("GSI %d low after RAISE with MSI-X off, want high (INTx)", gsi)
	}
	if s := tb.ecamRead(tb.slot, RegStatus, 2); s&StatusINTx == 0 {
		t.Errorf("status = %#x, want StatusINTx set", s)
	}
	p := make([]byte, 4)
	regs.Read(TestDevISR, p)
	if le(p) != 1 {
		t.Errorf("ISR = %d, want 1", le(p))
	}
	// INTx disable lowers the line but the status still shows the pin.
	tb.ecamWrite(tb.slot, RegCommand, 2, CmdINTxDisable)
	if tb.irqs.level(gsi) {
		t.Errorf("GSI %d high with CmdINTxDisable", gsi)
	}
	tb.ecamWrite(tb.slot, RegCommand, 2, 0)
	if !tb.irqs.level(gsi) {
		t.Errorf("GSI %d low after clearing CmdINTxDisable with INTx pending", gsi)
	}
	regs.Write(TestDevISR, leBytes(1, 4))
	if tb.irqs.level(gsi) || f.intxAsserted() {
		t.Errorf("GSI %d still high after the ISR write", gsi)
	}
	if s := tb.ecamRead(tb.slot, RegStatus, 2); s&StatusINTx != 0 {
		t.Errorf("status = %#x after the ISR write, want StatusINTx clear", s)
	}
	regs.Read(TestDevCount, p)
	if le(p) != 1 {
		t.Errorf("COUNT = %d, want 1", le(p))
	}
}

// TestDoorbell: BAR0's doorbell is handed to the host while BAR0 is
// decoded, and ringing it raises vector 0 like a RAISE of 0.
func TestDoorbell(t *testing.T) {
	tb := newTestBus(t)
	f := tb.dev.Function()
	bar0 := f.BARAddress(0)
	if b := tb.irqs.bell(devices.MMIO, bar0+TestDevDoorbell); b != nil {
		t.Fatalf("doorbell registered before decoding was on")
	}
	tb.ecamWrite(tb.slot, RegCommand, 2, CmdMemory)
	b := tb.irqs.bell(devices.MMIO, bar0+TestDevDoorbell)
	if b == nil || b.size != 4 {
		t.Fatalf("doorbell at %#x = %+v, want one of 4 bytes", bar0+TestDevDoorbell, b)
	}
	b.ring()
	if tb.dev.Count() != 1 || !tb.irqs.level(testINTxGSI(tb.slot, 0)) {
		t.Errorf("after a ring: COUNT %d, INTx %v, want 1 and asserted", tb.dev.Count(), tb.irqs.level(testINTxGSI(tb.slot, 0)))
	}
	tb.ecamWrite(tb.slot, RegCommand, 2, 0)
	if b := tb.irqs.bell(devices.MMIO, bar0+TestDevDoorbell); b != nil {
		t.Errorf("doorbell still registered after decoding was turned off")
	}
	// Without doorbells in the host, the write reaches the device.
	tb.irqs.noBells = true
	tb.ecamWrite(tb.slot, RegCommand, 2, CmdMemory)
	tb.mmio.Write(bar0+TestDevDoorbell, leBytes(0, 4))
	if tb.dev.Count() != 2 {
		t.Errorf("COUNT after a doorbell write through the bus = %d, want 2", tb.dev.Count())
	}
}
