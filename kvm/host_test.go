package kvm

import (
	"testing"
	"testing/fstest"
)

func TestDetectHost(t *testing.T) {
	dir := &fstest.MapFile{Mode: 0o555 | 1<<31}
	cpu := func(flags string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("processor\t: 0\nflags\t\t: fpu " + flags + " sse2\n\nprocessor\t: 1\nflags\t\t: fpu\n")}
	}
	tests := []struct {
		name string
		fs   fstest.MapFS
		want HostKind
	}{
		{"intel", fstest.MapFS{"proc/cpuinfo": cpu("vmx"), "sys/module/kvm_intel": dir}, HostVMX},
		{"amd", fstest.MapFS{"proc/cpuinfo": cpu("svm"), "sys/module/kvm_amd": dir}, HostSVM},
		{"pvm", fstest.MapFS{"proc/cpuinfo": cpu("hypervisor"), "sys/module/kvm_pvm": dir, "sys/module/kvm": dir}, HostPVM},
		{"vmx flag but module absent, pvm present", fstest.MapFS{"proc/cpuinfo": cpu("vmx"), "sys/module/kvm_pvm": dir}, HostPVM},
		{"nothing", fstest.MapFS{"proc/cpuinfo": cpu("")}, HostUnknown},
		{"no cpuinfo", fstest.MapFS{}, HostUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectHost(tt.fs); got != tt.want {
				t.Errorf("DetectHost(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestReadHostModel(t *testing.T) {
	tests := []struct{ cpuinfo, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: QEMU TCG CPU version 2.5+\nflags\t: fpu svm\n\nprocessor\t: 1\nmodel name\t: other\n", "QEMU TCG CPU version 2.5+"},
		{"processor\t: 0\nflags\t: fpu\n", ""},
	}
	for _, tt := range tests {
		root := fstest.MapFS{"proc/cpuinfo": {Data: []byte(tt.cpuinfo)}}
		if got := ReadHost(root).Model; got != tt.want {
			t.Errorf("ReadHost(%q).Model = %q, want %q", tt.cpuinfo, got, tt.want)
		}
	}
	if got := ReadHost(fstest.MapFS{}).Model; got != "" {
		t.Errorf("ReadHost(no cpuinfo).Model = %q, want \"\"", got)
	}
}
