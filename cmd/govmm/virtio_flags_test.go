package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/govmm/govmm/machine"
)

func TestVirtioFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    []machine.Device
		wantErr string
	}{
		{[]string{"-drive", "file=/d.img"}, []machine.Device{"virtio-blk,file=/d.img"}, ""},
		{[]string{"-drive", "file=/d.img,readonly=on,if=virtio,cache=unsafe", "-drive=file=/e.img"}, []machine.Device{"virtio-blk,file=/d.img,readonly=on,cache=unsafe", "virtio-blk,file=/e.img"}, ""},
		{[]string{"-device", "pci-testdev", "-rng", "on", "-device", "pci-testdev"}, []machine.Device{"pci-testdev", "pci-testdev", "virtio-rng"}, ""},
		{[]string{"-net", "tap,ifname=tap0,mac=52:54:00:00:00:01"}, []machine.Device{"virtio-net,mac=52:54:00:00:00:01,tap=tap0"}, ""},
		{[]string{"-net", "user,hostfwd=tcp::2222-:22"}, []machine.Device{"virtio-net,user,hostfwd=tcp::2222-:22"}, ""},
		{[]string{"-net", "none", "-rng", "off"}, nil, ""},
		{[]string{"-drive", "readonly=on"}, nil, "give file=PATH"},
		{[]string{"-drive", "file=/d.img,if=ide"}, nil, "virtio"},
		{[]string{"-drive", "file=/d.img,cache=none"}, nil, "cache=none"},
		{[]string{"-drive", "file=/d.img,readonly=maybe"}, nil, "give on or off"},
		{[]string{"-net", "tap"}, nil, "ifname=NAME"},
		{[]string{"-net", "bridge"}, nil, "give tap,ifname=NAME"},
		{[]string{"-net", "user,hostfwd=tcp:2222:22"}, nil, "hostfwd"},
		{[]string{"-net", "tap,ifname=a/b"}, nil, "interface name"},
		{[]string{"-rng", "yes"}, nil, "give on or off"},
	}
	for _, tt := range tests {
		o, err := parseFlags(append([]string{"-kernel", "/k"}, tt.args...), io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(o.devices, tt.want) {
			t.Errorf("parseFlags(%q) devices = %q, %v, want %q", tt.args, devicesOf(o), err, tt.want)
		}
	}
}

func devicesOf(o *options) []machine.Device {
	if o == nil {
		return nil
	}
	return o.devices
}

// TestDeviceAccess: what Landlock must leave open for the devices.
func TestDeviceAccess(t *testing.T) {
	a := machine.DeviceAccessOf([]machine.Device{"virtio-blk,file=/rw.img", "virtio-blk,file=/ro.img,readonly=on", "virtio-net,tap=tap0", "pci-testdev", "virtio-rng"})
	if !slices.Equal(a.ReadWrite, []string{"/rw.img", "/dev/net/tun"}) || !slices.Equal(a.Read, []string{"/ro.img"}) || a.Network {
		t.Errorf("DeviceAccessOf = %+v, want /rw.img and /dev/net/tun read-write, /ro.img read-only, TCP confined", a)
	}
	if a := machine.DeviceAccessOf([]machine.Device{"virtio-net,user"}); !a.Network {
		t.Errorf("DeviceAccessOf(user networking) = %+v, want Network", a)
	}
}
