package machine

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// TestDebianKernelSeesACPI boots Debian's cloud kernel with 4 vCPUs on
// any KVM host (directly on PVM hosts, as far as a stock kernel goes
// there) and waits for its early log to show govmm's ACPI tables found
// and parsed and 4 CPUs allowed: the RSDP where the zero page says, each
// table with govmm's OEM ID, the I/O APIC, the SCI's override and the
// MADT used for SMP. Measured on a PVM host: 11-13 s.
func TestDebianKernelSeesACPI(t *testing.T) {
	host := kvmtest.Require(t)
	kernel, _ := linuxGuest(t)
	wanted := []string{
		"ACPI: RSDP 0x00000000000E0000 000024 (v02 GOVMM )",
		"ACPI: XSDT 0x",
		"ACPI: FACP 0x",
		"ACPI: DSDT 0x",
		"ACPI: FACS 0x",
		"ACPI: APIC 0x",
		"ACPI: MCFG 0x",
		"ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 low level)",
		"ACPI: LAPIC_NMI (acpi_id[0xff] high edge lint[0x1])",
		"IOAPIC[0]: apic_id 0, version 17, address 0xfec00000, GSI 0-23",
		"ACPI: Using ACPI (MADT) for SMP configuration information",
		"smpboot: Allowing 4 CPUs, 0 hotplug CPUs",
	}
	cmdline := fmt.Sprintf("console=ttyS0 earlyprintk=serial reboot=k panic=-1 govmm.test=%d", time.Now().UnixNano())
	w := newWatcher(wanted...)
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, kernel), Cmdline: cmdline, MemSize: 256 << 20, CPUs: 4, Boot: BootFast, CacheDir: kvmtest.CacheDir(), SerialOut: w, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	took := runToLines(t, m, w, host, wanted)
	t.Logf("the kernel parsed the ACPI tables and allowed 4 CPUs %v after start (%v host)", took, host)
}

// TestLinuxACPISMPPowerOff boots Debian's kernel to the guest agent with
// 1, 2, 4 and 8 vCPUs (so, on PVM hosts, in the emulated machine) and has
// the guest's shell count its processors, list the ACPI tables it got, and
// power off with u-root's poweroff: Linux enters S5 through the FADT's
// PM1a control block, and the VM ends with a power off, status 0, not
// through the debug-exit device.
func TestLinuxACPISMPPowerOff(t *testing.T) {
	kvmtest.RequireLinux(t)
	kernelPath, initrdPath := linuxGuest(t)
	kernel, initrd := readFile(t, kernelPath), readFile(t, initrdPath)
	script := "echo GOVMM-CPUS $(grep -c ^processor /proc/cpuinfo)\n" +
		"echo GOVMM-TABLES $(ls /sys/firmware/acpi/tables | tr '\\n' ' ')\n" +
		"echo GOVMM-ONLINE $(cat /sys/devices/system/cpu/online)\n" +
		"poweroff\nsleep 60\n"
	for _, n := range []int{1, 2, 4, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cmdline := "console=ttyS0 reboot=k panic=-1 quiet " + images.AgentCommandLine(script, false)
			w := newWatcher()
			m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: kernel, Initrd: initrd, Cmdline: cmdline, MemSize: 512 << 20, CPUs: n, Boot: BootAuto, CacheDir: kvmtest.CacheDir(), SerialOut: w, Log: testLog{t}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			start := time.Now()
			res, err := m.Run(ctx)
			if ctx.Err() != nil {
				t.Fatalf("Linux with %d vCPUs did not power off within 4 minutes:\n%s", n, w.String())
			}
			out := w.String()
			if err != nil || res.Reason != vcpu.StopPowerOff || res.Status != 0 || res.DebugExit {
				t.Fatalf("Run() with %d vCPUs = %+v, %v, want an ACPI power off with status 0:\n%s", n, res, err, out)
			}
			if got := regexp.MustCompile(`GOVMM-CPUS (\d+)`).FindStringSubmatch(out); got == nil || got[1] != fmt.Sprint(n) {
				t.Errorf("/proc/cpuinfo counts %v processors, want %d:\n%s", got, n, out)
			}
			if want := fmt.Sprintf("GOVMM-ONLINE 0-%d", n-1); n > 1 && !strings.Contains(out, want) {
				t.Errorf("online CPUs: want %q:\n%s", want, out)
			}
			tables := regexp.MustCompile(`GOVMM-TABLES (.*)`).FindStringSubmatch(out)
			for _, name := range []string{"APIC", "FACP", "DSDT", "MCFG", "FACS"} {
				if tables == nil || !strings.Contains(" "+tables[1], " "+name+" ") {
					t.Errorf("/sys/firmware/acpi/tables = %v, want %s in it", tables, name)
				}
			}
			t.Logf("%d vCPUs: boot, checks and ACPI power off in %v", n, time.Since(start).Round(time.Millisecond))
		})
	}
}
