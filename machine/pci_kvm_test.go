package machine

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// deviceRun is one test guest run with optional devices.
type deviceRun struct {
	res    Result
	err    error
	serial string
	log    string
	m      *Machine // closed; its devices' counters are still readable
}

// runDeviceGuest boots the test guest with cmdline, devices and PIT and
// runs it to its end.
func runDeviceGuest(t *testing.T, cmdline string, devs []Device, pit PITMode) deviceRun {
	t.Helper()
	var serial, log syncBuffer
	const mem = 128 << 20
	m, err := New(Config{
		KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), Cmdline: cmdline,
		MemSize: mem, CPUs: 1, Devices: devs, PIT: pit,
		SerialOut: &serial, Log: &log, Verbose: true,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := m.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("guest did not finish in 90 s; serial so far:\n%s\nlog:\n%s", serial.String(), log.String())
	}
	return deviceRun{res: res, err: err, serial: serial.String(), log: log.String(), m: m}
}

// TestPCIGuest: the test guest finds the host bridge and the test device
// through mechanism #1 and ECAM, sizes and moves the BARs, takes every
// MSI-X vector (one masked and released through the PBA, one through
// the doorbell) and an INTx through the I/O APIC.
func TestPCIGuest(t *testing.T) {
	kvmtest.Require(t)
	r := runDeviceGuest(t, "mode=pci", []Device{DevicePCITestDev}, PITKernel)
	if r.err != nil || r.res.Status != testguest.ExitOK || !r.res.DebugExit {
		t.Fatalf("Run() = %+v, %v; want status 0\nserial:\n%s\nlog:\n%s", r.res, r.err, r.serial, r.log)
	}
	slot := 1
	want := []string{
		fmt.Sprintf("pci cf8 00:00.0 %04x:%04x class 060000", pci.VendorID, pci.HostBridgeDeviceID),
		fmt.Sprintf("pci cf8 00:%02x.0 %04x:%04x class ff0000", slot, pci.VendorID, pci.TestDevDeviceID),
		fmt.Sprintf("pci ecam 00:00.0 %04x:%04x class 060000", pci.VendorID, pci.HostBridgeDeviceID),
		fmt.Sprintf("pci ecam 00:%02x.0 %04x:%04x class ff0000", slot, pci.VendorID, pci.TestDevDeviceID),
		"pci caps 09 11",
		"pci msix masked: pending, then delivered on unmask",
		"pci doorbell ok",
		fmt.Sprintf("pci intx gsi=%d ok", boot.PCIINTxGSI(slot, 0)),
		"pci ok count=12", // 8 vectors, the masked one, the doorbell, two INTx
	}
	for v := 0; v < pci.TestDevVectorsN; v++ {
		want = append(want, fmt.Sprintf("pci msix vector %d ok", v))
	}
	for _, w := range want {
		if !strings.Contains(r.serial, w) {
			t.Errorf("serial output lacks %q:\n%s", w, r.serial)
		}
	}
	// Where govmm put the BARs before the guest moved them: in the
	// windows boot/layout.go declares.
	mmio64, mmio64Size := boot.PCIMMIO64(128 << 20)
	windows := map[string][2]uint64{
		"bar0 mem32": {uint64(boot.PCIMMIO32Start), uint64(boot.PCIMMIO32Start) + boot.PCIMMIO32Size},
		"bar1 io":    {boot.PCIIOPortStart, boot.PCIIOPortStart + boot.PCIIOPortSize},
		"bar2 mem64": {uint64(mmio64), uint64(mmio64) + mmio64Size},
	}
	re := regexp.MustCompile(`pci (bar\d \w+) size=0x[0-9a-f]+ at 0x([0-9a-f]+)`)
	found := 0
	for _, mt := range re.FindAllStringSubmatch(r.serial, -1) {
		at, _ := strconv.ParseUint(mt[2], 16, 64)
		w, ok := windows[mt[1]]
		if !ok || at < w[0] || at >= w[1] {
			t.Errorf("govmm placed %s at %#x, want it in [%#x, %#x)", mt[1], at, w[0], w[1])
		}
		found++
	}
	if found != 3 {
		t.Errorf("the guest reported %d BARs, want 3:\n%s", found, r.serial)
	}
	td := r.m.PCITestDevs()[0]
	if td.Count() != 12 || td.Function().IRQErrors() != 0 {
		t.Errorf("test device COUNT %d, IRQErrors %d; want 12 and 0", td.Count(), td.Function().IRQErrors())
	}
	if r.m.pci.irqs.caps.ioeventfd && r.m.pci.irqs.rings.Load() == 0 {
		t.Errorf("KVM has ioeventfds, but the doorbell write reached govmm another way:\n%s", r.log)
	}
	t.Logf("%v; %s", r.m.pci.irqs.caps, r.m.pci.report())
}

// TestPCIWithoutDevices: without -device, bus 0 holds only the host
// bridge, through both mechanisms.
func TestPCIWithoutDevices(t *testing.T) {
	kvmtest.Require(t)
	r := runDeviceGuest(t, "mode=pci", nil, PITKernel)
	if r.err != nil || r.res.Status != testguest.ExitCheckFailed || !strings.Contains(r.serial, "no test device") {
		t.Fatalf("Run() = %+v, %v; want the guest's check failure for a missing test device\nserial:\n%s", r.res, r.err, r.serial)
	}
	for _, how := range []string{"cf8", "ecam"} {
		if n := strings.Count(r.serial, "pci "+how+" 00:"); n != 1 || !strings.Contains(r.serial, fmt.Sprintf("pci %s 00:00.0 %04x:%04x", how, pci.VendorID, pci.HostBridgeDeviceID)) {
			t.Errorf("%s found %d devices, want the host bridge alone:\n%s", how, n, r.serial)
		}
	}
}

// markTimes reads the boot-timer marks from govmm's log, by label.
func markTimes(log string) map[int]time.Duration {
	out := map[int]time.Duration{}
	re := regexp.MustCompile(`boot-timer: mark (\d+) \(0x[0-9a-f]+\) at (\d+) us`)
	for _, mt := range re.FindAllStringSubmatch(log, -1) {
		label, _ := strconv.Atoi(mt[1])
		us, _ := strconv.ParseInt(mt[2], 10, 64)
		out[label] = time.Duration(us) * time.Microsecond
	}
	return out
}

// TestPITGuest: the guest programs counter 0 at 100 Hz and counts 50
// interrupts through the I/O APIC, with KVM's PIT and with govmm's; 50
// periods are 500 ms of the host's clock. Counter 2 and port 0x61 behave
// as Linux's TSC calibration expects with both.
func TestPITGuest(t *testing.T) {
	kvmtest.Require(t)
	const hz, ticks = 100, 50
	for _, pit := range []PITMode{PITKernel, PITUser} {
		t.Run(pit.String(), func(t *testing.T) {
			r := runDeviceGuest(t, fmt.Sprintf("mode=pit hz=%d ticks=%d", hz, ticks), nil, pit)
			if r.err != nil || r.res.Status != testguest.ExitOK {
				t.Fatalf("Run() = %+v, %v; want status 0\nserial:\n%s\nlog:\n%s", r.res, r.err, r.serial, r.log)
			}
			for _, w := range []string{"pit ch2 out2 ok status=0xb0", fmt.Sprintf("pit ticks=%d hz=%d", ticks, hz)} {
				if !strings.Contains(r.serial, w) {
					t.Errorf("serial output lacks %q:\n%s", w, r.serial)
				}
			}
			marks := markTimes(r.log)
			start, ok1 := marks[0x50]
			end, ok2 := marks[0x51]
			if !ok1 || !ok2 {
				t.Fatalf("no boot-timer marks 0x50 and 0x51 in the log:\n%s", r.log)
			}
			got, want := end-start, ticks*time.Second/hz
			t.Logf("%d ticks at %d Hz took %v (want %v)", ticks, hz, got, want)
			// A late host timer loses a tick rather than bunching them
			// (devices.PIT), so the interval may stretch on a busy host,
			// never shrink.
			if got < want*9/10 || got > want*16/10 {
				t.Errorf("%d PIT interrupts at %d Hz took %v, want %v (-10%%, +60%%)", ticks, hz, got, want)
			}
			if pit == PITUser {
				n, errs := r.m.pit.Stats()
				if n < ticks+1 || errs != 0 {
					t.Errorf("userspace PIT raised %d edges with %d errors, want at least %d and none", n, errs, ticks+1)
				}
			}
		})
	}
}
