package acpi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestPkgLength(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x01}},
		{62, []byte{0x3F}},                          // 63 with itself: the one-byte form's largest
		{63, []byte{0x41, 0x04}},                    // 65 = 0x041
		{4093, []byte{0x4F, 0xFF}},                  // 4095: the two-byte form's largest
		{4094, []byte{0x81, 0x00, 0x01}},            // 4097 = 0x01001
		{1<<20 - 4, []byte{0x8F, 0xFF, 0xFF}},       // 2^20-1
		{1<<20 - 3, []byte{0xC1, 0x00, 0x00, 0x01}}, // 2^20+1
	}
	for _, tt := range tests {
		got, err := pkgLength(tt.n)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("pkgLength(%d) = % x, %v, want % x", tt.n, got, err, tt.want)
		}
	}
	if got, err := pkgLength(maxPkgLength); err == nil {
		t.Errorf("pkgLength(%d) = % x, want an error", maxPkgLength, got)
	}
}

func TestNameString(t *testing.T) {
	tests := []struct {
		in      string
		want    string // hex
		wantErr string
	}{
		{"_HID", "5f484944", ""},
		{"RTC", "5254435f", ""},
		{`\_S5`, "5c5f53355f", ""},
		{`\_SB.PCI0`, "5c2e5f53425f50434930", ""},
		{"^^AB", "5e5e41425f5f", ""},
		{"A.B.C", "2f03415f5f5f425f5f5f435f5f5f", ""},
		{`\`, "5c00", ""},
		{"", "", "empty"},
		{"1ABC", "", "not allowed"},
		{"ABCDE", "", "1 to 4"},
		{"abc", "", "not allowed"},
		{`\_SB..X`, "", "1 to 4"},
		{`^\X`, "", "not allowed"},
	}
	for _, tt := range tests {
		got, err := NameString(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NameString(%q) = % x, %v, want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%x", got) != tt.want {
			t.Errorf("NameString(%q) = %x, %v, want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestInteger(t *testing.T) {
	tests := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{opZero}},
		{1, []byte{opOne}},
		{2, []byte{0x0A, 2}},
		{0xFF, []byte{0x0A, 0xFF}},
		{0x100, []byte{0x0B, 0x00, 0x01}},
		{0x1_0000, []byte{0x0C, 0, 0, 1, 0}},
		{0xFFFF_FFFF, []byte{0x0C, 0xFF, 0xFF, 0xFF, 0xFF}},
		{1 << 32, []byte{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}},
		{^uint64(0), []byte{opOnes}},
	}
	for _, tt := range tests {
		if got := Integer(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("Integer(%#x) = % x, want % x", tt.v, got, tt.want)
		}
	}
}

func TestEISAID(t *testing.T) {
	tests := []struct {
		id      string
		want    uint32 // the DWord ASL's EisaId() gives
		wantErr bool
	}{
		{"PNP0A03", 0x030AD041, false},
		{"PNP0A08", 0x080AD041, false},
		{"PNP0501", 0x0105D041, false},
		{"PNP0B00", 0x000BD041, false},
		{"PNP0C02", 0x020CD041, false},
		{"PNP0C0", 0, true},
		{"pnp0A03", 0, true},
		{"PNP0G03", 0, true},
	}
	for _, tt := range tests {
		got, err := EISAID(tt.id)
		if tt.wantErr {
			if err == nil {
				t.Errorf("EISAID(%q) = % x, want an error", tt.id, got)
			}
			continue
		}
		want := Integer(uint64(tt.want))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("EISAID(%q) = % x, %v, want % x", tt.id, got, err, want)
		}
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"String", String("ab"), []byte{0x0D, 'a', 'b', 0}},
		{"Name", Name("_UID", Integer(1)), []byte{0x08, '_', 'U', 'I', 'D', 0x01}},
		{"Package", Package(Integer(0), Integer(2)), []byte{0x12, 0x05, 0x02, 0x00, 0x0A, 0x02}},
		{"Buffer", Buffer([]byte{0xAA}), []byte{0x11, 0x03, 0x01, 0xAA}},
		{"Return", Return(Integer(1)), []byte{0xA4, 0x01}},
		{"Method", Method("_STA", 0, Return(Integer(0x0F))), []byte{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F}},
		{"Device", Device("COM1"), []byte{0x5B, 0x82, 0x05, 'C', 'O', 'M', '1'}},
		{"Scope", Scope(`\_SB`), []byte{0x10, 0x06, 0x5C, '_', 'S', 'B', '_'}},
		{"ResourceTemplate", ResourceTemplate(IRQNoFlags(4)), []byte{0x11, 0x08, 0x0A, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}},
		{"IO", IO(0x3F8, 8), []byte{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}},
		{"Memory32Fixed", Memory32Fixed(0xE0000000, 0x10000000), []byte{0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xE0, 0, 0, 0, 0x10}},
		{"WordBusNumber", WordBusNumber(0, 255), []byte{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0x01}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}
