package machine

import (
	"slices"
	"strings"
	"testing"
)

// TestRestoreDeviceShape: a restore (or a migration's destination) may
// give its devices other backends, a clone's own disk copy, TAP and MAC,
// but not other devices as the guest sees them; a card given without a
// MAC keeps the saved guest's.
func TestRestoreDeviceShape(t *testing.T) {
	saved := []Device{"virtio-net,tap=tap0,mac=52:54:00:00:00:01", "virtio-blk,file=/a.img", "virtio-rng"}
	tests := []struct {
		name  string
		given []Device
		same  bool
		want  []Device // after ApplySaved
	}{
		{"none given: the saved guest's", nil, false, saved},
		{"the same", saved, true, saved},
		{"a clone's own TAP, MAC and disk", []Device{"virtio-net,tap=tap1,mac=52:54:00:00:00:02", "virtio-blk,file=/b.img,cache=unsafe", "virtio-rng"}, true,
			[]Device{"virtio-net,tap=tap1,mac=52:54:00:00:00:02", "virtio-blk,file=/b.img,cache=unsafe", "virtio-rng"}},
		{"another backend, the saved MAC kept", []Device{"virtio-net,user", "virtio-blk,file=/b.img", "virtio-rng"}, true,
			[]Device{"virtio-net,user,mac=52:54:00:00:00:01", "virtio-blk,file=/b.img", "virtio-rng"}},
		{"a read-only disk", []Device{"virtio-net,tap=tap0", "virtio-blk,file=/a.img,readonly=on", "virtio-rng"}, false, saved},
		{"a device less", []Device{"virtio-net,tap=tap0", "virtio-blk,file=/a.img"}, false, saved},
		{"another order", []Device{"virtio-blk,file=/a.img", "virtio-net,tap=tap0", "virtio-rng"}, false, saved},
		{"another kind", []Device{"virtio-net,tap=tap0", "virtio-blk,file=/a.img", "pci-testdev"}, false, saved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{MemSize: 64 << 20, CPUs: 1, Devices: tt.given}
			s := SavedConfig{MemSize: 64 << 20, CPUs: 1, Devices: saved, DebugDevices: true}
			d := c.Differences(s)
			if differ := len(d) > 0; differ == tt.same {
				t.Errorf("Differences() = %q, want the devices the same: %v", d, tt.same)
			}
			if !tt.same && tt.given != nil && (len(d) != 1 || !strings.HasPrefix(d[0], "devices")) {
				t.Errorf("Differences() = %q, want one naming the devices", d)
			}
			c.ApplySaved(s)
			if !slices.Equal(c.Devices, tt.want) {
				t.Errorf("ApplySaved: devices %q, want %q", c.Devices, tt.want)
			}
		})
	}
}
