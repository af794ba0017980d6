package devices

import "testing"

func TestBusUnregister(t *testing.T) {
	b := NewBus(MMIO)
	d := NewPOST()
	if err := b.Register(0x1000, 0x100, "a", d); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(0x2000, 0x100, "b", d); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		base    uint64
		name    string
		wantErr bool
	}{
		{0x1000, "b", true},  // the name must match
		{0x1800, "a", true},  // nothing starts there
		{0x1000, "a", false}, // removed
		{0x1000, "a", true},  // already gone
	}
	for _, tt := range tests {
		if err := b.Unregister(tt.base, tt.name); (err != nil) != tt.wantErr {
			t.Errorf("Unregister(%#x, %q) = %v, want error %v", tt.base, tt.name, err, tt.wantErr)
		}
	}
	if _, ok := b.Lookup(0x1000, 1); ok {
		t.Errorf("Lookup(0x1000) found a range after Unregister")
	}
	if _, ok := b.Lookup(0x2000, 1); !ok {
		t.Errorf("Lookup(0x2000) lost the other range")
	}
	// The range is free again.
	if err := b.Register(0x1000, 0x1000, "c", d); err != nil {
		t.Errorf("Register over the freed range = %v", err)
	}
}
