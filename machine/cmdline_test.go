package machine

import (
	"strings"
	"testing"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

func TestLinuxHideParams(t *testing.T) {
	tests := []struct {
		name   string
		hidden []vcpu.CPUIDBit
		params string
		noRoom string
	}{
		{
			"PVMHidden", vcpu.PVMHidden,
			// The measured set (DESIGN.md) comes first in clearcpuid=,
			// then ring 0's SIMD; what does not fit is user-space only,
			// or rdtscp, whose CPUID hiding sticks on PVM.
			"noxsave nofsgsbase nopku clearcpuid=popcnt,cx16,rdrand,rdseed,smap,smep,umip,pcid,invpcid,la57,ssse3,sse4_2,pclmulqdq,aes,sha_ni,clflushopt,clwb,waitpkg,rdpid,bmi1",
			"rdtscp,sse4_1,movbe,bmi2,rtm,adx,movdiri,movdir64b,abm",
		},
		{"nothing hidden", nil, "", ""},
		{
			"avx without xsave hidden needs its own clearcpuid",
			[]vcpu.CPUIDBit{{Name: "avx", Needs: "xsave"}, {Name: "popcnt"}},
			"clearcpuid=popcnt,avx", "",
		},
		{
			"avx with xsave hidden is left to noxsave",
			[]vcpu.CPUIDBit{{Name: "avx", Needs: "xsave"}, {Name: "xsave"}},
			"noxsave", "",
		},
	}
	for _, tt := range tests {
		hp := linuxHideParams(tt.hidden)
		if got := strings.Join(hp.Params, " "); got != tt.params {
			t.Errorf("linuxHideParams(%s).Params = %q, want %q", tt.name, got, tt.params)
		}
		if got := strings.Join(hp.NoRoom, ","); got != tt.noRoom {
			t.Errorf("linuxHideParams(%s).NoRoom = %q, want %q", tt.name, got, tt.noRoom)
		}
		for _, p := range hp.Params {
			if v, ok := strings.CutPrefix(p, "clearcpuid="); ok && len(v) > clearCPUIDMax {
				t.Errorf("linuxHideParams(%s): clearcpuid= value is %d bytes, Linux reads %d", tt.name, len(v), clearCPUIDMax)
			}
		}
	}
}

func TestAddParams(t *testing.T) {
	params := []string{"noxsave", "nopku", "clearcpuid=popcnt,cx16"}
	tests := []struct {
		cmdline string
		want    string
		yours   string
	}{
		{"console=ttyS0", "console=ttyS0 noxsave nopku clearcpuid=popcnt,cx16", ""},
		{"", "noxsave nopku clearcpuid=popcnt,cx16", ""},
		{"console=ttyS0 ", "console=ttyS0 noxsave nopku clearcpuid=popcnt,cx16", ""},
		// The user's own parameters win, value or not.
		{"console=ttyS0 clearcpuid=sse4_2 noxsave", "console=ttyS0 clearcpuid=sse4_2 noxsave nopku", "noxsave clearcpuid=popcnt,cx16"},
		// Linux gives what follows "--" to init: add before it.
		{"quiet -- init arg", "quiet noxsave nopku clearcpuid=popcnt,cx16 -- init arg", ""},
		{"-- nopku", "noxsave nopku clearcpuid=popcnt,cx16 -- nopku", ""},
		// A quoted value is one parameter, spaces and "--" included.
		{`dyndbg="file x.c -- nopku" console=ttyS0`, `dyndbg="file x.c -- nopku" console=ttyS0 noxsave nopku clearcpuid=popcnt,cx16`, ""},
	}
	for _, tt := range tests {
		e := addParams(tt.cmdline, params)
		if e.Cmdline != tt.want || strings.Join(e.Yours, " ") != tt.yours {
			t.Errorf("addParams(%q) = %q, yours %q, want %q, yours %q", tt.cmdline, e.Cmdline, e.Yours, tt.want, tt.yours)
		}
	}
	// Linux reads '-' and '_' in a name as the same.
	if e := addParams("rcu-nocbs=1", []string{"rcu_nocbs=0"}); e.Cmdline != "rcu-nocbs=1" || len(e.Added) != 0 {
		t.Errorf("addParams(rcu-nocbs=1, rcu_nocbs=0) = %q, added %q, want it unchanged", e.Cmdline, e.Added)
	}
}

func TestIsLinux(t *testing.T) {
	bz := func(version string) *Loaded {
		return &Loaded{Path: "fast", Kernel: &boot.Kernel{Header: boot.SetupHeader{KernelVersion: version}}}
	}
	tests := []struct {
		name  string
		l     *Loaded
		image string
		want  bool
	}{
		{"Debian's bzImage", bz("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"), "", true},
		{"a self-built bzImage", bz("6.12.0 (me@box) #3 Tue Nov 3 10:00:00 UTC 2026"), "", true},
		{"the test guest's bzImage", bz("govmm testguest (64-bit boot protocol only)"), "", false},
		{"a bzImage without a version", bz(""), "", false},
		{"a vmlinux", &Loaded{Path: "elf"}, "\x7fELF...Linux version 6.1.0 (a@b) #1...", true},
		{"another ELF", &Loaded{Path: "elf"}, "\x7fELF...testguest", false},
	}
	for _, tt := range tests {
		if got := isLinux(tt.l, []byte(tt.image)); got != tt.want {
			t.Errorf("isLinux(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWantLinuxHideParams(t *testing.T) {
	tests := []struct {
		mode HideMode
		host kvm.HostKind
		want bool
	}{
		{HideAuto, kvm.HostPVM, true},
		{HideOn, kvm.HostPVM, true},
		{HideOff, kvm.HostPVM, false},
		// Hardware keeps CPUID as set: hiding needs no help there.
		{HideOn, kvm.HostVMX, false},
		{HideAuto, kvm.HostSVM, false},
		{HideAuto, kvm.HostUnknown, false},
	}
	for _, tt := range tests {
		if got := wantLinuxHideParams(tt.mode, tt.host); got != tt.want {
			t.Errorf("wantLinuxHideParams(%d, %v) = %v, want %v", tt.mode, tt.host, got, tt.want)
		}
	}
}
