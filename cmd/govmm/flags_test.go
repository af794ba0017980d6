package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/machine"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(*options) bool
		wantErr string
	}{
		{"one dash", []string{"-kernel", "bz", "-mem", "2G", "-cpus", "2", "-append", "-x console=ttyS0"},
			func(o *options) bool {
				return o.kernel == "bz" && o.mem == 2<<30 && o.cpus == 2 && o.cmdline == "-x console=ttyS0"
			}, ""},
		{"two dashes and =", []string{"--kernel=bz", "--initrd=rd", "--mem=256"},
			func(o *options) bool { return o.kernel == "bz" && o.initrd == "rd" && o.mem == 256<<20 }, ""},
		{"one dash with =", []string{"-kernel=bz", "-v"},
			func(o *options) bool { return o.kernel == "bz" && o.verbose && o.mem == 512<<20 }, ""},
		{"defaults", []string{"-kernel", "bz"},
			func(o *options) bool {
				return o.boot == machine.BootAuto && o.hide == machine.HideAuto && o.cmdline == defaultCmdline && o.serial == "stdio" && o.debugDevices
			}, ""},
		{"debug devices off", []string{"-kernel", "bz", "-debug-devices", "off"}, func(o *options) bool { return !o.debugDevices }, ""},
		{"bad debug-devices", []string{"-kernel", "bz", "-debug-devices", "no"}, nil, "-debug-devices \"no\": give on or off"},
		{"no devices and KVM's PIT by default", []string{"-kernel", "bz"}, func(o *options) bool { return len(o.devices) == 0 && o.pit == machine.PITKernel }, ""},
		{"two test devices and the user PIT", []string{"-kernel", "bz", "-device", "pci-testdev", "--device=pci-testdev", "-pit", "user"},
			func(o *options) bool {
				return len(o.devices) == 2 && o.devices[1] == machine.DevicePCITestDev && o.pit == machine.PITUser
			}, ""},
		{"bad device", []string{"-kernel", "bz", "-device", "virtio-gpu"}, nil, "-device: device \"virtio-gpu\": the devices are pci-testdev"},
		{"bad pit", []string{"-kernel", "bz", "-pit", "hpet"}, nil, "-pit: PIT \"hpet\": give kernel"},
		{"no kernel", []string{"-mem", "1G"}, nil, "no kernel"},
		{"bad size", []string{"-kernel", "bz", "-mem", "lots"}, nil, "-mem"},
		{"bad cpus", []string{"-kernel", "bz", "-cpus", "0"}, nil, "-cpus"},
		{"bad boot", []string{"-kernel", "bz", "-boot", "magic"}, nil, "-boot"},
		{"bad hide-cpuid", []string{"-kernel", "bz", "-hide-cpuid", "maybe"}, nil, "-hide-cpuid"},
		{"bad serial", []string{"-kernel", "bz", "-serial", "tcp"}, nil, "-serial"},
		{"unknown flag", []string{"-kernel", "bz", "-frobnicate"}, nil, "govmm -h"},
		{"stray argument", []string{"-kernel", "bz", "extra"}, nil, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q) = %v", tt.args, err)
			}
			if !tt.check(o) {
				t.Errorf("parseFlags(%q) = %+v, not what the case expects", tt.args, *o)
			}
		})
	}
}

// TestHelpDocumentsEveryFlag checks -h names each flag govmm has.
func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	o, err := parseFlags([]string{"-h"}, &out)
	if err != nil || !o.help {
		t.Fatalf("parseFlags(-h) = %+v, %v, want help", o, err)
	}
	for _, f := range []string{"--kernel", "--initrd", "--append", "--mem", "--cpus", "--boot", "--serial", "--kvm", "--cache", "--hide-cpuid", "--debug-devices", "--device", "--pit", "--verbose", "Exit status"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("-h output lacks %q:\n%s", f, out.String())
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	tests := []struct {
		name                  string
		govmmCache, xdg, home string
		want                  string
	}{
		{"GOVMM_CACHE", "/srv/c", "/x", "/h", "/srv/c"},
		{"XDG_CACHE_HOME", "", "/x", "/h", "/x/govmm"},
		{"HOME", "", "", "/h", "/h/.cache/govmm"},
		{"neither: per-user under the temp dir", "", "", "", filepath.Join(os.TempDir(), fmt.Sprintf("govmm-cache-%d", os.Geteuid()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOVMM_CACHE", tt.govmmCache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			if got := defaultCacheDir(); got != tt.want {
				t.Errorf("defaultCacheDir() = %q, want %q", got, tt.want)
			}
		})
	}
}
