package machine

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/govmm/govmm/acpi"
	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// requireACPICA returns the path of an ACPICA tool (Debian's acpica-tools:
// iasl, acpiexec). Missing, it fails the test under GOVMM_REQUIRE_KVM=1
// (make test, whose deps install it), except inside the emulated machine,
// which carries only busybox (make unit has run the test on the host);
// otherwise it skips with the reason.
func requireACPICA(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	why := fmt.Sprintf("%s not found (apt-get install acpica-tools, or make deps): %v", tool, err)
	if os.Getenv("GOVMM_REQUIRE_KVM") == "1" && !kvmtest.SoftwareCPU() {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// dumpTables writes the tables of a 4-vCPU, 512 MiB guest to a folder as
// govmm -dump-acpi does, and returns the folder.
func dumpTables(t *testing.T, cpus int) (string, []acpi.Table) {
	t.Helper()
	tables, err := ACPITables(Config{CPUs: cpus, MemSize: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tb := range tables {
		if err := os.WriteFile(filepath.Join(dir, tb.Name()+".dat"), tb.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, tables
}

// TestTablesDisassemble has iasl disassemble every table (the RSDP is not
// a table iasl reads on its own), and compiles the DSDT's disassembly
// back without optimizations: the AML must come out byte for byte the
// same, so iasl read every byte as govmm meant it.
func TestTablesDisassemble(t *testing.T) {
	iasl := requireACPICA(t, "iasl")
	dir, tables := dumpTables(t, 4)
	for _, tb := range tables {
		if tb.Name() == "RSDP" {
			continue
		}
		out, err := exec.Command(iasl, "-d", filepath.Join(dir, tb.Name()+".dat")).CombinedOutput()
		if err != nil || regexp.MustCompile(`(?i)\b(error|warning)`).Match(out) {
			t.Errorf("iasl -d %s.dat: %v\n%s", tb.Name(), err, out)
		}
	}
	out, err := exec.Command(iasl, "-oa", "-p", filepath.Join(dir, "DSDT-again"), filepath.Join(dir, "DSDT.dsl")).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("0 Errors, 0 Warnings")) {
		t.Fatalf("iasl -oa DSDT.dsl: %v\n%s", err, out)
	}
	again, err := os.ReadFile(filepath.Join(dir, "DSDT-again.aml"))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "DSDT.dat"))
	// The headers differ in the compiler's name and version only.
	if len(again) != len(orig) || !bytes.Equal(again[36:], orig[36:]) {
		t.Errorf("DSDT recompiled from iasl's disassembly differs: %d bytes, want %d\nours:  % x\niasl's: % x", len(again), len(orig), orig[36:min(len(orig), 96)], again[36:min(len(again), 96)])
	}
}

// TestACPIExecEvaluates loads the DSDT into acpiexec's namespace and
// evaluates the host bridge's _CRS and _PRT, \_S5 and the serial port's
// and the keyboard's _CRS: the windows must be boot/layout.go's, and every
// slot's pins must go where PCIINTxGSI says.
func TestACPIExecEvaluates(t *testing.T) {
	acpiexec := requireACPICA(t, "acpiexec")
	dir, _ := dumpTables(t, 4)
	cmd := exec.Command(acpiexec, "-b", `evaluate \_SB.PCI0._CRS; evaluate \_SB.PCI0._PRT; evaluate \_S5; evaluate \_SB.COM1._CRS; evaluate \_SB.KBD._CRS`,
		filepath.Join(dir, "DSDT.dat"), filepath.Join(dir, "FACP.dat"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("acpiexec: %v\n%s", err, out)
	}
	text := string(out)
	sections := strings.Split(text, "Evaluating ")
	if len(sections) != 6 {
		t.Fatalf("acpiexec evaluated %d objects, want 5:\n%s", len(sections)-1, text)
	}
	if strings.Contains(text, "AE_") && regexp.MustCompile(`Evaluation of .* failed|AE_NOT_FOUND`).MatchString(text) {
		t.Fatalf("acpiexec could not evaluate every object:\n%s", text)
	}

	// _CRS: the buffer acpiexec prints, decoded descriptor by descriptor.
	crs := acpiexecBuffer(t, sections[1])
	mmio64, mmio64Size := boot.PCIMMIO64(ramEnd(512 << 20))
	want := []string{
		"bus 0x0-0xff",
		"io 0xcf8+0x8",
		"io window 0x0-0xcf7",
		"io window 0xd00-0xffff",
		fmt.Sprintf("mem window %#x-%#x", uint64(boot.PCIMMIO32Start), uint64(boot.PCIMMIO32Start)+boot.PCIMMIO32Size-1),
		fmt.Sprintf("mem window %#x-%#x", uint64(mmio64), uint64(mmio64)+mmio64Size-1),
	}
	if got := decodeResources(t, crs); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("acpiexec's \\_SB.PCI0._CRS = %q, want %q", got, want)
	}
	if got := decodeResources(t, acpiexecBuffer(t, sections[4])); strings.Join(got, "; ") != "io 0x3f8+0x8; irq 4" {
		t.Errorf("acpiexec's \\_SB.COM1._CRS = %q, want io 0x3f8+0x8; irq 4", got)
	}
	if got, want := strings.Join(decodeResources(t, acpiexecBuffer(t, sections[5])), "; "), "io 0x60+0x1; io 0x64+0x1; irq 1"; got != want {
		t.Errorf("acpiexec's \\_SB.KBD._CRS = %q, want %q", got, want)
	}

	// _PRT: 128 packages of four integers: address, pin, source, GSI.
	ints := regexp.MustCompile(`\[Integer\] = ([0-9A-F]+)`).FindAllStringSubmatch(sections[2], -1)
	if len(ints) != 4*acpi.PCISlots*4 {
		t.Fatalf("acpiexec's _PRT has %d integers, want %d:\n%s", len(ints), 4*acpi.PCISlots*4, sections[2])
	}
	for i := 0; i < len(ints); i += 4 {
		var v [4]uint64
		for j := range v {
			v[j], _ = strconv.ParseUint(ints[i+j][1], 16, 64)
		}
		slot, pin := i/16, i/4%4
		if v != [4]uint64{uint64(slot)<<16 | 0xFFFF, uint64(pin), 0, uint64(boot.PCIINTxGSI(slot, pin))} {
			t.Errorf("_PRT entry %d = %#x, want slot %d pin %d to GSI %d", i/4, v, slot, pin, boot.PCIINTxGSI(slot, pin))
		}
	}

	// \_S5: SLP_TYP a and b are what the ACPI PM device powers off on.
	s5 := regexp.MustCompile(`\[Integer\] = ([0-9A-F]+)`).FindAllStringSubmatch(sections[3], -1)
	if len(s5) != 4 || s5[0][1] != fmt.Sprintf("%016X", sleepTypeS5) || s5[1][1] != s5[0][1] {
		t.Errorf("acpiexec's \\_S5 = %v, want SLP_TYP %d twice", s5, sleepTypeS5)
	}
}

// acpiexecBuffer reads the bytes of the first buffer acpiexec prints in
// text ("    0000: 88 0D 00 ...  // ....").
func acpiexecBuffer(t *testing.T, text string) []byte {
	t.Helper()
	var b []byte
	for _, m := range regexp.MustCompile(`\s[0-9A-F]{4}: ((?:[0-9A-F]{2} )+)`).FindAllStringSubmatch(text, -1) {
		raw, err := hex.DecodeString(strings.ReplaceAll(m[1], " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, raw...)
	}
	if len(b) == 0 {
		t.Fatalf("no buffer in acpiexec's output:\n%s", text)
	}
	return b
}

// decodeResources names the resource descriptors in b (ACPI 6.5, 6.4)
// that govmm's DSDT uses, up to the end tag.
func decodeResources(t *testing.T, b []byte) []string {
	t.Helper()
	le := binary.LittleEndian
	var out []string
	for len(b) > 0 {
		tag := b[0]
		if tag&0x80 == 0 { // small item: length in bits 2-0
			n := int(tag & 7)
			if len(b) < 1+n {
				t.Fatalf("small descriptor % x cut short", b)
			}
			body := b[1 : 1+n]
			switch tag >> 3 {
			case 0x4: // IRQ
				for i := 0; i < 16; i++ {
					if le.Uint16(body)&(1<<i) != 0 {
						out = append(out, fmt.Sprintf("irq %d", i))
					}
				}
			case 0x8: // I/O port
				out = append(out, fmt.Sprintf("io %#x+%#x", le.Uint16(body[1:]), body[6]))
			case 0xF: // end tag
				return out
			default:
				out = append(out, fmt.Sprintf("small %#x", tag))
			}
			b = b[1+n:]
			continue
		}
		if len(b) < 3 || len(b) < 3+int(le.Uint16(b[1:])) {
			t.Fatalf("large descriptor % x cut short", b)
		}
		body := b[3 : 3+int(le.Uint16(b[1:]))]
		kind := map[byte]string{0: "mem window", 1: "io window", 2: "bus"}[body[0]]
		switch tag {
		case 0x88: // Word address space
			out = append(out, fmt.Sprintf("%s %#x-%#x", kind, le.Uint16(body[5:]), le.Uint16(body[7:])))
		case 0x87: // DWord
			out = append(out, fmt.Sprintf("%s %#x-%#x", kind, le.Uint32(body[7:]), le.Uint32(body[11:])))
		case 0x8A: // QWord
			out = append(out, fmt.Sprintf("%s %#x-%#x", kind, le.Uint64(body[11:]), le.Uint64(body[19:])))
		default:
			out = append(out, fmt.Sprintf("large %#x", tag))
		}
		b = b[3+len(body):]
	}
	t.Fatalf("resource template without an end tag")
	return nil
}

// TestACPIConfigFromLayout checks the wiring between boot/layout.go, the
// devices and the tables: where they go, and the windows and ports they
// declare.
func TestACPIConfigFromLayout(t *testing.T) {
	tests := []struct {
		mem     uint64
		wantEnd uint64
	}{
		{512 << 20, 512 << 20},
		{3 << 30, 3 << 30},
		{4 << 30, 5 << 30}, // 1 GiB moved above the hole
	}
	for _, tt := range tests {
		if got := ramEnd(tt.mem); uint64(got) != tt.wantEnd {
			t.Errorf("ramEnd(%#x) = %v, want %#x", tt.mem, got, tt.wantEnd)
		}
	}
	tables, err := ACPITables(Config{CPUs: 32, MemSize: 8 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if tables[0].Addr != uint64(boot.RSDPAddr) {
		t.Errorf("RSDP at %#x, want boot.RSDPAddr %v", tables[0].Addr, boot.RSDPAddr)
	}
	for _, tb := range tables[1:] {
		if tb.Addr < uint64(boot.ACPITablesAddr) || tb.Addr+uint64(len(tb.Data)) > uint64(boot.ACPITablesAddr)+boot.ACPITablesSize {
			t.Errorf("%s at [%#x, %#x) is outside boot.ACPITablesAddr's %#x bytes", tb.Name(), tb.Addr, tb.Addr+uint64(len(tb.Data)), boot.ACPITablesSize)
		}
	}
	c := acpiConfig(32, 8<<30)
	mmio64, _ := boot.PCIMMIO64(ramEnd(8 << 30))
	if c.PCIMMIO64Base != uint64(mmio64) || c.ECAMSize() != boot.PCIeECAMSize || len(c.APICIDs) != 32 || c.APICIDs[31] != 31 {
		t.Errorf("acpiConfig(32, 8 GiB) = 64-bit window %#x, ECAM %#x, APIC IDs %v; want %v, %#x, 0-31", c.PCIMMIO64Base, c.ECAMSize(), c.APICIDs, mmio64, boot.PCIeECAMSize)
	}
	if _, err := ACPITables(Config{CPUs: 0, MemSize: 1 << 20}); err == nil {
		t.Errorf("ACPITables with 0 vCPUs = nil error, want one")
	}
}
