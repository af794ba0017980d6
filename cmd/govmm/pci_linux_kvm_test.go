package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// TestLinuxPCITestDev runs `govmm exec -device pci-testdev` on the default
// Linux guest (confined by seccomp as a user's govmm is) and reads the
// bus from user space: /sys/bus/pci/devices lists the host bridge and the
// test device with govmm's IDs; Linux found ECAM through the ACPI MCFG
// and uses it; enabling the device through sysfs turns its decoding on
// (govmm then maps the BARs, while the guest runs), and its I/O BAR reads
// "GOVM" through the sysfs resource file; its configuration space shows
// the capability list, the MSI-X capability with 8 vectors, and INTA
// routed by the DSDT's _PRT to GSI 17.
func TestLinuxPCITestDev(t *testing.T) {
	kvmtest.RequireLinux(t)
	cache := kvmtest.CacheDir()
	if _, err := imagesenv.Load(cache); err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	const dev = "/sys/bus/pci/devices/0000:00:01.0"
	script := `for d in /sys/bus/pci/devices/*; do echo PCI $(basename $d) $(cat $d/vendor) $(cat $d/device) $(cat $d/class); done
dmesg | grep MMCONFIG
echo 1 > ` + dev + `/enable
echo ENABLE $(cat ` + dev + `/enable) IRQ $(cat ` + dev + `/irq)
echo MAGIC $(dd if=` + dev + `/resource1 bs=4 count=1 2>/dev/null)
echo RESOURCES
head -n 3 ` + dev + `/resource
hexdump ` + dev + `/config
`
	args := []string{"exec", "-cache", cache, "-kvm", kvmtest.Path(), "-timeout", "4m", "-device", "pci-testdev", "--", script}
	var stdout, stderr bytes.Buffer
	status, err := run(t.Context(), args, nil, &stdout, &stderr)
	out := stdout.String()
	if status != 0 || err != nil {
		t.Fatalf("govmm exec -device pci-testdev = %d, %v\nstdout:\n%s\nstderr:\n%s", status, err, out, stderr.String())
	}
	for _, want := range []string{
		"PCI 0000:00:00.0 0x1af4 0x10f0 0x060000",
		"PCI 0000:00:01.0 0x1af4 0x10f1 0xff0000",
		"PCI: MMCONFIG for domain 0000 [bus 00-ff] at [mem 0xe0000000-0xefffffff]",
		"ENABLE 1 IRQ 17",
		"MAGIC GOVM",
		// The vendor capability (09, next 0x48, 8 bytes, "govmm"), then
		// MSI-X (11, last, table size 7, table and PBA in BAR2).
		"00000040  09 48 08 67 6f 76 6d 6d  11 00 07 00 02 00 00 00",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("guest output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "PCI 0000:"); n != 2 {
		t.Errorf("/sys/bus/pci/devices lists %d devices, want the host bridge and the test device:\n%s", n, out)
	}
	if strings.Contains(out, "not using MMCONFIG") {
		t.Errorf("Linux refused the ECAM window:\n%s", out)
	}
	// BAR0 (32-bit memory) and BAR1 (I/O) where govmm placed them: in
	// the windows the DSDT declares, which Linux kept.
	res := regexp.MustCompile(`0x00000000c[0-9a-f]{7} 0x00000000c[0-9a-f]{7} 0x[0-9a-f]+\n0x000000000000c[0-9a-f]{3} 0x000000000000c[0-9a-f]{3} 0x[0-9a-f]+\n`)
	if !res.MatchString(out) {
		t.Errorf("the resource file does not show BAR0 in the 32-bit window and BAR1 in the I/O window:\n%s", out)
	}
}
