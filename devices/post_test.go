package devices

import "testing"

func TestPOST(t *testing.T) {
	d := NewPOST()
	p := []byte{0xff, 0xff}
	d.Read(0, p)
	if p[0] != 0 || p[1] != 0 {
		t.Errorf("Read(0, 2 bytes) = % x, want 00 00", p)
	}
	for _, w := range [][]byte{{0x10}, {0x34, 0x12}, {}} {
		d.Write(0, w)
	}
	if got, want := d.State(), (POSTState{Writes: 2, Last: 0x34}); got != want {
		t.Errorf("State() = %+v, want %+v", got, want)
	}
	if got, want := RestorePOST(d.State()).State(), d.State(); got != want {
		t.Errorf("RestorePOST(st).State() = %+v, want %+v", got, want)
	}
}
