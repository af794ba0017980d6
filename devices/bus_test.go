package devices

import (
	"bytes"
	"testing"
)

// recorder remembers the last access it saw.
type recorder struct {
	off  uint64
	data []byte
}

func (r *recorder) Read(off uint64, p []byte) {
	r.off = off
	for i := range p {
		p[i] = byte(off) + byte(i)
	}
}

func (r *recorder) Write(off uint64, p []byte) {
	r.off = off
	r.data = append([]byte(nil), p...)
}

func TestBusRegister(t *testing.T) {
	tests := []struct {
		name       string
		space      Space
		base, size uint64
		wantErr    bool
	}{
		{"free", PortIO, 0x100, 8, false},
		{"just below", PortIO, 0x3f0, 8, false},
		{"just above", PortIO, 0x400, 8, false},
		{"overlaps start", PortIO, 0x3f4, 8, true},
		{"overlaps end", PortIO, 0x3fc, 8, true},
		{"inside", PortIO, 0x3f9, 1, true},
		{"covers", PortIO, 0x3f0, 0x20, true},
		{"empty", PortIO, 0x500, 0, true},
		{"past 0xffff", PortIO, 0xfffe, 4, true},
		{"mmio high", MMIO, 0xd000_0000, 0x1000, false},
		{"mmio wraps", MMIO, ^uint64(0), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBus(tt.space)
			if err := b.Register(0x3f8, 8, "com1", &recorder{}); err != nil {
				t.Fatalf("Register(com1): %v", err)
			}
			err := b.Register(tt.base, tt.size, "x", &recorder{})
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("Register(%#x, %#x) = %v, want error %v", tt.base, tt.size, err, tt.wantErr)
			}
		})
	}
}

func TestBusDispatch(t *testing.T) {
	b := NewBus(PortIO)
	lo, hi := &recorder{}, &recorder{}
	for _, r := range []struct {
		base, size uint64
		d          *recorder
	}{{0x70, 2, lo}, {0x3f8, 8, hi}} {
		if err := b.Register(r.base, r.size, "dev", r.d); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		addr      uint64
		n         int
		wantOK    bool
		wantDev   *recorder
		wantOff   uint64
		wantBytes []byte
	}{
		{"first byte", 0x3f8, 1, true, hi, 0, []byte{0}},
		{"offset", 0x3fd, 1, true, hi, 5, []byte{5}},
		{"wide", 0x3fc, 4, true, hi, 4, []byte{4, 5, 6, 7}},
		{"straddles end", 0x3fe, 4, false, nil, 0, []byte{0xff, 0xff, 0xff, 0xff}},
		{"other device", 0x71, 1, true, lo, 1, []byte{1}},
		{"gap", 0x80, 1, false, nil, 0, []byte{0xff}},
		{"past last", 0x400, 2, false, nil, 0, []byte{0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.Unclaimed.Load()
			p := make([]byte, tt.n)
			if ok := b.Read(tt.addr, p); ok != tt.wantOK {
				t.Errorf("Read(%#x) = %v, want %v", tt.addr, ok, tt.wantOK)
			}
			if !bytes.Equal(p, tt.wantBytes) {
				t.Errorf("Read(%#x) data = % x, want % x", tt.addr, p, tt.wantBytes)
			}
			if tt.wantDev != nil && tt.wantDev.off != tt.wantOff {
				t.Errorf("Read(%#x) reached offset %d, want %d", tt.addr, tt.wantDev.off, tt.wantOff)
			}
			wantUnclaimed := uint64(0)
			if !tt.wantOK {
				wantUnclaimed = 1
			}
			if got := b.Unclaimed.Load() - before; got != wantUnclaimed {
				t.Errorf("Unclaimed after Read(%#x) grew by %d, want %d", tt.addr, got, wantUnclaimed)
			}
		})
	}
	if ok := b.Write(0x3f9, []byte{0xab, 0xcd}); !ok || hi.off != 1 || !bytes.Equal(hi.data, []byte{0xab, 0xcd}) {
		t.Errorf("Write(0x3f9, ab cd) = %v, device saw offset %d data % x, want true, 1, ab cd", ok, hi.off, hi.data)
	}
	before := b.Unclaimed.Load()
	if ok := b.Write(0x81, []byte{1}); ok {
		t.Errorf("Write(0x81) = true, want false (no device)")
	}
	if got := b.Unclaimed.Load() - before; got != 1 {
		t.Errorf("Unclaimed after an unclaimed write grew by %d, want 1", got)
	}
	rs := b.Ranges()
	if len(rs) != 2 || rs[0].Base != 0x70 || rs[1].Base != 0x3f8 {
		t.Errorf("Ranges() = %+v, want 0x70 then 0x3f8", rs)
	}
}

func TestOffsetDevice(t *testing.T) {
	r := &recorder{}
	d := Offset(r, 4)
	d.Write(1, []byte{9})
	if r.off != 5 {
		t.Errorf("Offset(d, 4).Write(1) reached offset %d, want 5", r.off)
	}
	d.Read(0, make([]byte, 1))
	if r.off != 4 {
		t.Errorf("Offset(d, 4).Read(0) reached offset %d, want 4", r.off)
	}
}
