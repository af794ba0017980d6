package acpi

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// testConfig is a PC-like machine with n vCPUs (the machine package's
// tests check the real one against boot/layout.go).
func testConfig(n int) *Config {
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = uint32(i)
	}
	return &Config{
		RSDPAddr: 0xE0000, TablesAddr: 0xE0040, TablesSize: 0x1FFC0,
		APICIDs: ids, LAPICAddr: 0xFEE00000, IOAPICAddr: 0xFEC00000,
		Overrides:     []Override{{Source: 9, GSI: 9, Flags: PolarityLow | TriggerLevel}},
		PM1aEventPort: 0x600, PM1aControlPort: 0x604, ResetPort: 0x608, ResetValue: 1, SCI: 9,
		SleepTypeS5: 5, RTCCentury: 0x32,
		ECAMBase: 0xE0000000, ECAMEndBus: 255,
		PCIMMIO32Base: 0xC0000000, PCIMMIO32Size: 0x10000000,
		PCIMMIO64Base: 4 << 30, PCIMMIO64Size: 64 << 30,
		INTxGSI:  func(slot, pin int) int { return 16 + (slot+pin)%4 },
		COM1Port: 0x3F8, COM1IRQ: 4, RTCPort: 0x70, RTCIRQ: 8,
	}
}

// byName indexes the tables by Name.
func byName(t *testing.T, tables []Table) map[string]Table {
	t.Helper()
	m := map[string]Table{}
	for _, tb := range tables {
		if _, dup := m[tb.Name()]; dup {
			t.Fatalf("Build() gave two %s tables", tb.Name())
		}
		m[tb.Name()] = tb
	}
	return m
}

var le = binary.LittleEndian

func TestBuildHeadersAndChecksums(t *testing.T) {
	tables, err := Build(testConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	if tables[0].Name() != "RSDP" {
		t.Errorf("Build()[0] = %s, want the RSDP first", tables[0].Name())
	}
	want := []struct {
		name     string
		revision byte
	}{{"XSDT", 1}, {"FACP", 6}, {"DSDT", 2}, {"APIC", 5}, {"MCFG", 1}}
	m := byName(t, tables)
	for _, w := range want {
		tb, ok := m[w.name]
		if !ok {
			t.Errorf("Build() has no %s", w.name)
			continue
		}
		d := tb.Data
		if string(d[:4]) != w.name || int(le.Uint32(d[4:])) != len(d) || d[8] != w.revision || Sum(d) != 0 {
			t.Errorf("%s: signature %q, length field %d for %d bytes, revision %d, sum %#x; want %q, %d, revision %d, sum 0",
				w.name, d[:4], le.Uint32(d[4:]), len(d), d[8], Sum(d), w.name, len(d), w.revision)
		}
		if string(d[10:16]) != OEMID || string(d[16:24]) != OEMTableID {
			t.Errorf("%s: OEM ID %q, table ID %q, want %q, %q", w.name, d[10:16], d[16:24], OEMID, OEMTableID)
		}
		if tb.Addr%8 != 0 {
			t.Errorf("%s at %#x, want 8-byte aligned", w.name, tb.Addr)
		}
	}
	facs := m["FACS"]
	if facs.Addr%64 != 0 || len(facs.Data) != 64 || string(facs.Data[:4]) != "FACS" || le.Uint32(facs.Data[4:]) != 64 || facs.Data[32] != 2 {
		t.Errorf("FACS at %#x = % x, want 64 bytes, 64-aligned, version 2", facs.Addr, facs.Data)
	}
	// No two tables overlap, and all lie in the area given.
	c := testConfig(4)
	for i, a := range tables[1:] {
		if a.Addr < c.TablesAddr || a.Addr+uint64(len(a.Data)) > c.TablesAddr+c.TablesSize {
			t.Errorf("%s at [%#x, %#x) is outside the tables' area", a.Name(), a.Addr, a.Addr+uint64(len(a.Data)))
		}
		for _, b := range tables[i+2:] {
			if a.Addr < b.Addr+uint64(len(b.Data)) && b.Addr < a.Addr+uint64(len(a.Data)) {
				t.Errorf("%s and %s overlap", a.Name(), b.Name())
			}
		}
	}
}

func TestRSDPAndXSDT(t *testing.T) {
	tables, err := Build(testConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	m := byName(t, tables)
	r := m["RSDP"]
	if r.Addr != 0xE0000 || len(r.Data) != 36 || string(r.Data[:8]) != "RSD PTR " {
		t.Fatalf("RSDP at %#x = % x, want 36 bytes of \"RSD PTR \" at 0xe0000", r.Addr, r.Data)
	}
	if Sum(r.Data[:20]) != 0 || Sum(r.Data) != 0 {
		t.Errorf("RSDP sums: first 20 bytes %#x, all %#x, want 0 and 0", Sum(r.Data[:20]), Sum(r.Data))
	}
	if r.Data[15] != 2 || le.Uint32(r.Data[16:]) != 0 || le.Uint32(r.Data[20:]) != 36 || le.Uint64(r.Data[24:]) != m["XSDT"].Addr {
		t.Errorf("RSDP: revision %d, RSDT %#x, length %d, XSDT %#x; want 2, 0, 36, %#x",
			r.Data[15], le.Uint32(r.Data[16:]), le.Uint32(r.Data[20:]), le.Uint64(r.Data[24:]), m["XSDT"].Addr)
	}
	x := m["XSDT"].Data
	var got []string
	for o := 36; o+8 <= len(x); o += 8 {
		a := le.Uint64(x[o:])
		for _, tb := range tables {
			if tb.Addr == a {
				got = append(got, tb.Name())
			}
		}
	}
	if strings.Join(got, ",") != "FACP,APIC,MCFG" || len(x) != 36+3*8 {
		t.Errorf("XSDT points at %v (%d bytes), want FACP,APIC,MCFG", got, len(x))
	}
}

func TestFADT(t *testing.T) {
	tables, err := Build(testConfig(2))
	if err != nil {
		t.Fatal(err)
	}
	m := byName(t, tables)
	f := m["FACP"].Data
	if len(f) != 276 {
		t.Fatalf("FADT is %d bytes, want 276 (revision 6)", len(f))
	}
	gasAt := func(off int) uint64 { return uint64(le.Uint32(f[off:])) } // space, width, offset, access
	tests := []struct {
		field     string
		got, want uint64
	}{
		{"FIRMWARE_CTRL", uint64(le.Uint32(f[36:])), m["FACS"].Addr},
		{"DSDT", uint64(le.Uint32(f[40:])), m["DSDT"].Addr},
		{"SCI_INT", uint64(le.Uint16(f[46:])), 9},
		{"SMI_CMD", uint64(le.Uint32(f[48:])), 0},
		{"PM1a_EVT_BLK", uint64(le.Uint32(f[56:])), 0x600},
		{"PM1a_CNT_BLK", uint64(le.Uint32(f[64:])), 0x604},
		{"PM_TMR_BLK", uint64(le.Uint32(f[76:])), 0},
		{"PM1_EVT_LEN", uint64(f[88]), 4},
		{"PM1_CNT_LEN", uint64(f[89]), 2},
		{"PM_TMR_LEN", uint64(f[91]), 0},
		{"P_LVL2_LAT", uint64(le.Uint16(f[96:])), 0xFFF},
		{"CENTURY", uint64(f[108]), 0x32},
		{"IAPC_BOOT_ARCH", uint64(le.Uint16(f[109:])), 0x7},
		{"Flags", uint64(le.Uint32(f[112:])), 0x465},
		{"Flags.PWR_BUTTON (0: fixed feature)", uint64(le.Uint32(f[112:]) >> 4 & 1), 0},
		{"Flags.HW_REDUCED_ACPI", uint64(le.Uint32(f[112:]) >> 20 & 1), 0},
		{"RESET_REG space, width, access", gasAt(116), 0x01_00_08_01},
		{"RESET_REG address", le.Uint64(f[120:]), 0x608},
		{"RESET_VALUE", uint64(f[128]), 1},
		{"FADT minor version", uint64(f[131]), 5},
		{"X_FIRMWARE_CTRL", le.Uint64(f[132:]), m["FACS"].Addr},
		{"X_DSDT", le.Uint64(f[140:]), m["DSDT"].Addr},
		{"X_PM1a_EVT_BLK space, width, access", gasAt(148), 0x02_00_20_01},
		{"X_PM1a_EVT_BLK address", le.Uint64(f[152:]), 0x600},
		{"X_PM1a_CNT_BLK space, width, access", gasAt(172), 0x02_00_10_01},
		{"X_PM1a_CNT_BLK address", le.Uint64(f[176:]), 0x604},
		{"SLEEP_CONTROL_REG", le.Uint64(f[248:]), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("FADT %s = %#x, want %#x", tt.field, tt.got, tt.want)
		}
	}
}

// madtEntry is one interrupt controller structure.
type madtEntry struct {
	typ  byte
	body []byte
}

func madtEntries(t *testing.T, d []byte) []madtEntry {
	t.Helper()
	var out []madtEntry
	for o := 44; o < len(d); {
		if o+2 > len(d) || d[o+1] < 2 || o+int(d[o+1]) > len(d) {
			t.Fatalf("MADT entry at %d runs past the table (% x)", o, d[o:])
		}
		out = append(out, madtEntry{d[o], d[o+2 : o+int(d[o+1])]})
		o += int(d[o+1])
	}
	return out
}

func TestMADT(t *testing.T) {
	for _, n := range []int{1, 2, 4, 32, 255} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tables, err := Build(testConfig(n))
			if err != nil {
				t.Fatal(err)
			}
			d := byName(t, tables)["APIC"].Data
			if got := le.Uint32(d[36:]); got != 0xFEE00000 {
				t.Errorf("MADT local APIC address = %#x, want 0xfee00000", got)
			}
			if got := le.Uint32(d[40:]); got != 1 {
				t.Errorf("MADT flags = %#x, want PCAT_COMPAT (1)", got)
			}
			var cpus, ioapics, isos, nmis int
			for _, e := range madtEntries(t, d) {
				switch e.typ {
				case 0:
					if len(e.body) != 6 || int(e.body[0]) != cpus || int(e.body[1]) != cpus || le.Uint32(e.body[2:]) != 1 {
						t.Errorf("MADT processor %d = % x, want UID %d, APIC ID %d, enabled", cpus, e.body, cpus, cpus)
					}
					cpus++
				case 1:
					if len(e.body) != 10 || le.Uint32(e.body[2:]) != 0xFEC00000 || le.Uint32(e.body[6:]) != 0 {
						t.Errorf("MADT I/O APIC = % x, want 0xfec00000 from GSI 0", e.body)
					}
					ioapics++
				case 2:
					if len(e.body) != 8 || e.body[0] != 0 || e.body[1] != 9 || le.Uint32(e.body[2:]) != 9 || le.Uint16(e.body[6:]) != 0xF {
						t.Errorf("MADT override = % x, want ISA IRQ 9 to GSI 9, level, active-low", e.body)
					}
					isos++
				case 4:
					if len(e.body) != 4 || e.body[0] != 0xFF || e.body[3] != 1 {
						t.Errorf("MADT local APIC NMI = % x, want every processor's LINT1", e.body)
					}
					nmis++
				default:
					t.Errorf("MADT has an entry of type %d", e.typ)
				}
			}
			if cpus != n || ioapics != 1 || isos != 1 || nmis != 1 {
				t.Errorf("MADT has %d processors, %d I/O APICs, %d overrides, %d NMIs; want %d, 1, 1, 1", cpus, ioapics, isos, nmis, n)
			}
		})
	}
}

func TestMCFG(t *testing.T) {
	tables, err := Build(testConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	d := byName(t, tables)["MCFG"].Data
	if len(d) != 60 || le.Uint64(d[44:]) != 0xE0000000 || le.Uint16(d[52:]) != 0 || d[54] != 0 || d[55] != 255 {
		t.Errorf("MCFG = % x, want one allocation: 0xe0000000, segment 0, buses 0-255", d)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"APIC ID 255", func(c *Config) { c.APICIDs[1] = 255 }, "x2APIC"},
		{"no vCPUs", func(c *Config) { c.APICIDs = nil }, "no vCPUs"},
		{"RSDP misaligned", func(c *Config) { c.RSDPAddr = 0xE0008 }, "16-byte"},
		{"area too small", func(c *Config) { c.TablesSize = 512 }, "more than"},
		{"RSDP inside the tables", func(c *Config) { c.RSDPAddr = 0xE0100 }, "overlaps"},
		{"no INTx routing", func(c *Config) { c.INTxGSI = nil }, "INTx"},
	}
	for _, tt := range tests {
		c := testConfig(2)
		tt.edit(c)
		if _, err := Build(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%s) = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}
