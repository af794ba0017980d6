package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// devicesText is /proc/bus/input/devices as Debian's cloud kernel prints
// it with the ACPI button driver loaded.
const devicesText = `I: Bus=0019 Vendor=0000 Product=0001 Version=0000
N: Name="Power Button"
P: Phys=LNXPWRBN/button/input0
S: Sysfs=/devices/LNXSYSTM:00/LNXPWRBN:00/input/input0
U: Uniq=
H: Handlers=kbd event0
B: PROP=0
B: EV=3
B: KEY=10000000000000 0

I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
H: Handlers=sysrq kbd event1 leds
`

func TestPowerButtonDevice(t *testing.T) {
	tests := []struct {
		text   string
		want   string
		wantOK bool
	}{
		{devicesText, "event0", true},
		{"N: Name=\"AT Translated Set 2 keyboard\"\nH: Handlers=kbd event1\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := powerButtonDevice(tt.text)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("powerButtonDevice(%.40q) = %q, %v, want %q, %v", tt.text, got, ok, tt.want, tt.wantOK)
		}
	}
}

func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.LittleEndian.PutUint16(b[16:], typ)
	binary.LittleEndian.PutUint16(b[18:], code)
	binary.LittleEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestWaitPowerKey(t *testing.T) {
	var press bytes.Buffer
	press.Write(inputEvent(0, 0, 0))            // EV_SYN
	press.Write(inputEvent(evKey, 30, 1))       // KEY_A
	press.Write(inputEvent(evKey, keyPower, 0)) // a release
	press.Write(inputEvent(evKey, keyPower, keyPressed))
	if err := waitPowerKey(&press); err != nil {
		t.Errorf("waitPowerKey(... KEY_POWER pressed) = %v, want nil", err)
	}
	noPress := bytes.NewReader(append(inputEvent(evKey, keyPower, 0), inputEvent(evKey, 30, 1)...))
	if err := waitPowerKey(noPress); err != io.EOF {
		t.Errorf("waitPowerKey(no press) = %v, want io.EOF", err)
	}
}
