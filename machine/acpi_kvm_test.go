package machine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// TestSMPTestGuest boots the test guest with N vCPUs in mode=acpi: it
// finds the RSDP through the zero page and in the BIOS area, walks the
// XSDT to the MADT, counts N processors there, and starts each AP with
// INIT, SIPI, SIPI through its local APIC; each AP prints its APIC ID.
func TestSMPTestGuest(t *testing.T) {
	kvmtest.Require(t)
	elf := readFile(t, guests(t).ELF)
	for _, n := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var serial syncBuffer
			m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: fmt.Sprintf("mode=acpi expect_cpus=%d", n), MemSize: 64 << 20, CPUs: n, SerialOut: &serial})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			res, err := m.Run(ctx)
			if err != nil || res.Reason != vcpu.StopPowerOff || res.Status != 0 {
				t.Fatalf("Run() with %d vCPUs = %+v, %v, want status 0\nserial:\n%s", n, res, err, serial.String())
			}
			want := []string{
				"acpi: rsdp=0xe0000 (the boot protocol and the BIOS-area scan agree)",
				fmt.Sprintf("acpi: madt cpus=%d ioapic=0xfec00000 sci=9 gsi=9 pm1a_evt=0x0600 pm1a_cnt=0x0604 s5=5", n),
				"bsp 0 up\n",
			}
			for id := 1; id < n; id++ {
				want = append(want, fmt.Sprintf("ap %d up\n", id))
			}
			want = append(want, fmt.Sprintf("smp ok cpus=%d\n", n))
			for _, w := range want {
				if !strings.Contains(serial.String(), w) {
					t.Errorf("serial output lacks %q:\n%s", w, serial.String())
				}
			}
			t.Logf("%d vCPUs: tables found and %d APs up in %v", n, n-1, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestACPIPowerOff has the test guest enter S5 as the DSDT's \_S5 says,
// through the FADT's PM1a control block: the VM ends with a power off and
// status 0, not through the debug-exit device.
func TestACPIPowerOff(t *testing.T) {
	kvmtest.Require(t)
	res, serial, _, err := bootGuest(t, readFile(t, guests(t).ELF), nil, "mode=poweroff", 64<<20, BootAuto)
	if err != nil || res.Reason != vcpu.StopPowerOff || res.Status != 0 || res.DebugExit {
		t.Errorf("Run() = %+v, %v, want an ACPI power off with status 0\nserial:\n%s", res, err, serial)
	}
	if !strings.Contains(serial, "poweroff: S5 (SLP_TYP=5) through PM1a_CNT") {
		t.Errorf("serial output lacks the guest's S5 line:\n%s", serial)
	}
}

// TestPowerButton presses the ACPI power button (what govmm does on
// SIGTERM) while the test guest waits for it with the SCI routed through
// the I/O APIC as the MADT says: the guest sees the press and powers off.
func TestPowerButton(t *testing.T) {
	kvmtest.Require(t)
	press := func(m *Machine) error { m.PowerButton(); return nil }
	res, out, err := runUntil(t, Config{Kernel: readFile(t, guests(t).ELF), Cmdline: "mode=powerbutton", MemSize: 64 << 20, CPUs: 2},
		"powerbutton: waiting for the power button", time.Minute, press)
	if err != nil || res.Reason != vcpu.StopPowerOff || res.Status != 0 {
		t.Errorf("Run() after the press = %+v, %v, want a power off with status 0\nserial:\n%s", res, err, out)
	}
	if !strings.Contains(out, "power button pressed\n") {
		t.Errorf("the guest did not see the press:\n%s", out)
	}
}
