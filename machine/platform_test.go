package machine

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/memory"
)

// noIRQs hands out interrupt lines that go nowhere.
type noIRQs struct{}

func (noIRQs) line(uint32) devices.IRQLine {
	return devices.IRQFunc(func(bool) error { return nil })
}

// TestPlatformDebugDevices: with the debug devices on, a guest can end the
// VM with a status (port and MMIO), log a boot-timer mark and print from
// ring 3 through the serial MMIO alias; with them off, none of those
// addresses is claimed, while COM1 itself still works.
func TestPlatformDebugDevices(t *testing.T) {
	mem, err := memory.New(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	accesses := []struct {
		name string
		bus  func(*platform) *devices.Bus
		addr uint64
		v    byte
	}{
		{"exit status port", func(p *platform) *devices.Bus { return p.io }, devices.PortDebugExit + devices.DebugExitStatus, 3},
		{"boot-timer mark port", func(p *platform) *devices.Bus { return p.io }, devices.PortDebugExit + devices.DebugExitMark, 1},
		{"exit status MMIO", func(p *platform) *devices.Bus { return p.mmio }, uint64(boot.DebugExitMMIO) + devices.DebugExitStatus, 4},
		{"serial MMIO alias", func(p *platform) *devices.Bus { return p.mmio }, uint64(boot.SerialMMIO) + devices.SerialTHR, 'm'},
		{"COM1", func(p *platform) *devices.Bus { return p.io }, devices.PortCOM1 + devices.SerialTHR, 'c'},
	}
	tests := []struct {
		debug      bool
		statuses   []int  // what the exit-status writes asked for
		serial     string // what reached COM1's output
		markLogged bool
	}{
		{true, []int{3, 4}, "mc", true},
		{false, nil, "c", false},
	}
	for _, tt := range tests {
		var serial, log bytes.Buffer
		var statuses []int
		p, err := newPlatform(noIRQs{}, mem, &serial, &log, time.Now(), tt.debug, func(s int) { statuses = append(statuses, s) }, nil)
		if err != nil {
			t.Fatalf("newPlatform(debug %v) = %v", tt.debug, err)
		}
		for _, a := range accesses {
			claimed := a.bus(p).Write(a.addr, []byte{a.v})
			if want := tt.debug || a.name == "COM1"; claimed != want {
				t.Errorf("debug %v: write to %s (%#x) claimed = %v, want %v", tt.debug, a.name, a.addr, claimed, want)
			}
		}
		p.finish(&log)
		if !slices.Equal(statuses, tt.statuses) {
			t.Errorf("debug %v: exit statuses = %v, want %v", tt.debug, statuses, tt.statuses)
		}
		if got := serial.String(); got != tt.serial {
			t.Errorf("debug %v: serial output = %q, want %q", tt.debug, got, tt.serial)
		}
		if got := strings.Contains(log.String(), "boot-timer: mark 1 "); got != tt.markLogged {
			t.Errorf("debug %v: log has a boot-timer mark = %v, want %v; log:\n%s", tt.debug, got, tt.markLogged, log.String())
		}
	}
}

// failingOutput fails every write, like a closed pipe.
type failingOutput struct{}

func (failingOutput) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestPlatformFinishReports: the end of a run says what the guest lost and
// what the rate limit kept out of the log.
func TestPlatformFinishReports(t *testing.T) {
	mem, err := memory.New(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var log bytes.Buffer
	p, err := newPlatform(noIRQs{}, mem, failingOutput{}, &log, time.Now(), true, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.io.Write(devices.PortCOM1+devices.SerialTHR, []byte{'x'})
	for range devices.MarkBurst + 5 {
		p.io.Write(devices.PortDebugExit+devices.DebugExitMark, []byte{1})
	}
	p.finish(&log)
	for _, want := range []string{
		"govmm: serial: 1 output bytes lost (1 failed writes to the output",
		"govmm: boot-timer: 5 marks in all not logged",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log after finish lacks %q:\n%s", want, log.String())
		}
	}
}
