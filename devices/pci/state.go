package pci

import (
	"bytes"
	"fmt"
)

// FunctionState is a function's state for snapshots: its configuration
// space (what the guest programmed: command, BARs, MSI-X control), the
// INTx pin the device asserts, and the MSI-X table and pending bits.
type FunctionState struct {
	Config    [ConfigSize]byte
	INTx      bool
	MSIXTable []byte   `json:",omitempty"`
	MSIXPBA   []uint64 `json:",omitempty"`
}

// State returns f's state.
func (f *Function) State() FunctionState {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := FunctionState{Config: f.space, INTx: f.intx}
	if f.msix != nil {
		s.MSIXTable = bytes.Clone(f.msix.table)
		s.MSIXPBA = append([]uint64(nil), f.msix.pba...)
	}
	return s
}

// Restore puts f in state s, taken from a function built from the same
// Config: its BARs are decoded where s has them, its INTx line is driven
// to match, and each MSI-X vector's route is set again before it next
// fires.
func (f *Function) Restore(s FunctionState) error {
	f.mapMu.Lock()
	defer f.mapMu.Unlock()
	f.lineMu.Lock()
	f.mu.Lock()
	for o := range s.Config {
		// Read-only bits are the device's: a state whose differ is of
		// another device (bits the guest can clear by writing 1 are
		// the guest's; so is RegStatus's INTx bit, from s.INTx).
		ro := ^f.wmask[o] &^ f.w1c[o]
		if o == RegStatus {
			ro &^= StatusINTx
		}
		if (s.Config[o]^f.space[o])&ro != 0 {
			f.mu.Unlock()
			f.lineMu.Unlock()
			return fmt.Errorf("pci %s: the state's configuration byte %#x is %#x, but this device's read-only bits there are %#x: it is another device's state", f.name, o, s.Config[o], f.space[o]&ro)
		}
	}
	if m := f.msix; m != nil && (len(s.MSIXTable) != len(m.table) || len(s.MSIXPBA) != len(m.pba)) {
		f.mu.Unlock()
		f.lineMu.Unlock()
		return fmt.Errorf("pci %s: the state has an MSI-X table of %d bytes and %d PBA words, this device %d and %d", f.name, len(s.MSIXTable), len(s.MSIXPBA), len(m.table), len(m.pba))
	}
	f.space = s.Config
	f.intx = s.INTx
	if f.msix != nil {
		copy(f.msix.table, s.MSIXTable)
		copy(f.msix.pba, s.MSIXPBA)
		for v := range f.msix.programmed {
			f.msix.programmed[v] = false // routes are set again on the next send
		}
	}
	want := f.decodeLocked()
	level := f.intx && f.commandLocked()&CmdINTxDisable == 0 && f.cfg.Pin != PinNone
	f.lineLevel = level
	f.mu.Unlock()
	err := f.driveLine(level)
	f.lineMu.Unlock()
	f.applyMappings(want)
	return err
}

// TestDevState is the test device's state: its function and COUNT.
type TestDevState struct {
	Function FunctionState
	Count    uint32
}

// State returns the test device's state.
func (d *TestDev) State() TestDevState {
	return TestDevState{Function: d.fn.State(), Count: d.count.Load()}
}

// Restore puts the test device in state s.
func (d *TestDev) Restore(s TestDevState) error {
	if err := d.fn.Restore(s.Function); err != nil {
		return err
	}
	d.count.Store(s.Count)
	return nil
}

// BusState is the bus's own state: mechanism #1's CONFIG_ADDRESS. Each
// function's state is its device's (Function.State, TestDev.State).
type BusState struct {
	ConfigAddress uint32
}

// State returns the bus's state.
func (b *Bus) State() BusState { return BusState{ConfigAddress: b.address.Load()} }

// Restore puts the bus in state s.
func (b *Bus) Restore(s BusState) { b.address.Store(s.ConfigAddress & configAddressMask) }
