package pci

import (
	"encoding/binary"
	"sync/atomic"
)

// TestDev is govmm's PCI test device, in the spirit of QEMU's pci-testdev
// (but not register-compatible with it): a few 32-bit registers that make
// it raise an interrupt, so a guest can prove its BAR sizing, MSI-X
// programming and INTx routing. Its BARs:
//
//	BAR0  32-bit memory, 4 KiB: the registers
//	BAR1  I/O, 32 ports: the same registers
//	BAR2  64-bit memory, 8 KiB: the MSI-X table (TestDevVectors vectors) at
//	      0, the pending-bit array at 0x1000
//
// Registers (offsets in BAR0 and BAR1, 32 bits, little-endian):
//
//	0x00 MAGIC     R   TestDevMagicValue ("GOVM")
//	0x04 COUNT     R   interrupts the guest asked for (RAISE and DOORBELL writes)
//	0x08 RAISE     W   N: send MSI-X vector N if MSI-X is on, else assert INTx
//	0x0C ISR       R   1 while INTx is asserted; W: writing 1 deasserts it
//	0x10 DOORBELL  W   as RAISE with 0; in BAR0 the host serves it without a
//	                   vCPU exit where KVM has ioeventfds
//	0x14 VECTORS   R   how many MSI-X vectors there are
//
// Its INTx pin is INTA. It has a vendor-specific capability holding
// "govmm" before its MSI-X capability, so a guest walks a list of two.
type TestDev struct {
	fn    *Function
	count atomic.Uint32
}

// Test device registers and values.
const (
	TestDevMagic    = 0x00
	TestDevCount    = 0x04
	TestDevRaise    = 0x08
	TestDevISR      = 0x0C
	TestDevDoorbell = 0x10
	TestDevVectors  = 0x14

	TestDevMagicValue = 0x4D56_4F47 // "GOVM" in memory order
	TestDevVectorsN   = 8

	testDevRegsSize  = 0x1000
	testDevIOSize    = 0x20
	testDevMSIXSize  = 0x2000
	testDevPBAOffset = 0x1000
)

// NewTestDev builds the test device's function.
func NewTestDev() (*TestDev, error) {
	d := &TestDev{}
	regs := testDevRegs{d}
	fn, err := NewFunction(Config{
		VendorID: VendorID, DeviceID: TestDevDeviceID,
		SubsysVendor: VendorID, SubsysID: TestDevDeviceID,
		Class: ClassOther,
		BARs: [BARCount]BAR{
			0: {Kind: BARMem32, Size: testDevRegsSize, Dev: regs, Doorbells: []Doorbell{{Offset: TestDevDoorbell, Ring: d.doorbell}}},
			1: {Kind: BARIO, Size: testDevIOSize, Dev: regs},
			2: {Kind: BARMem64, Size: testDevMSIXSize, Dev: zeroDevice{}},
		},
		Pin:       PinA,
		MSIX:      &MSIXConfig{Vectors: TestDevVectorsN, BAR: 2, TableOffset: 0, PBAOffset: testDevPBAOffset},
		VendorCap: []byte("govmm"),
	})
	if err != nil {
		return nil, err
	}
	d.fn = fn
	return d, nil
}

// Function is the device's PCI function, to add to a Bus.
func (d *TestDev) Function() *Function { return d.fn }

// Count is the value of the COUNT register.
func (d *TestDev) Count() uint32 { return d.count.Load() }

// raise sends vector v, or asserts INTx while MSI-X is off. Failures are
// counted in the function's IRQErrors (the guest's write has no reply).
func (d *TestDev) raise(v uint32) {
	d.count.Add(1)
	if d.fn.MSIXEnabled() {
		if _, err := d.fn.SendMSIX(int(v)); err != nil {
			d.fn.irqErrors.Add(1)
		}
		return
	}
	if err := d.fn.SetINTx(true); err != nil {
		d.fn.irqErrors.Add(1)
	}
}

func (d *TestDev) doorbell() { d.raise(0) }

// testDevRegs is the register block behind BAR0 and BAR1.
type testDevRegs struct{ d *TestDev }

func (r testDevRegs) Read(off uint64, p []byte) {
	var v uint32
	switch off &^ 3 {
	case TestDevMagic:
		v = TestDevMagicValue
	case TestDevCount:
		v = r.d.count.Load()
	case TestDevISR:
		if r.d.fn.intxAsserted() {
			v = 1
		}
	case TestDevVectors:
		v = TestDevVectorsN
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	for i := range p {
		p[i] = 0
		if k := off&3 + uint64(i); k < 4 {
			p[i] = b[k]
		}
	}
}

func (r testDevRegs) Write(off uint64, p []byte) {
	if off&3 != 0 || len(p) == 0 {
		return // registers take aligned writes
	}
	var b [4]byte
	copy(b[:], p)
	v := binary.LittleEndian.Uint32(b[:])
	switch off {
	case TestDevRaise:
		r.d.raise(v)
	case TestDevDoorbell:
		r.d.doorbell()
	case TestDevISR:
		if v&1 != 0 {
			if err := r.d.fn.SetINTx(false); err != nil {
				r.d.fn.irqErrors.Add(1)
			}
		}
	}
}

// intxAsserted reports whether the device asserts INTx.
func (f *Function) intxAsserted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intx
}

// zeroDevice reads as zeros and ignores writes: the parts of a BAR with
// nothing in them.
type zeroDevice struct{}

func (zeroDevice) Read(off uint64, p []byte) { fill(p, 0) }
func (zeroDevice) Write(uint64, []byte)      {}
