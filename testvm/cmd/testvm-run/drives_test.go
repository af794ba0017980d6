package main

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/testvm"
)

func TestPassDrives(t *testing.T) {
	tests := []struct {
		args   []string
		want   []string
		drives []testvm.Drive
	}{
		{[]string{"/govmm", "-drive", "file=disk.img,readonly=on", "-mem", "1G"}, []string{"/govmm", "-drive", "file=/dev/vda,readonly=on", "-mem", "1G"}, []testvm.Drive{{Path: "/w/disk.img", ReadOnly: true}}},
		{[]string{"/govmm", "--drive=file=/a.img", "-drive=cache=unsafe,file=b.img"}, []string{"/govmm", "--drive=file=/dev/vda", "-drive=cache=unsafe,file=/dev/vdb"}, []testvm.Drive{{Path: "/a.img"}, {Path: "/w/b.img"}}},
		{[]string{"/govmm", "exec", "--", "-drive", "file=x"}, []string{"/govmm", "exec", "--", "-drive", "file=x"}, nil},
		{[]string{"/govmm", "-initrd", "my.cpio", "-drive", "readonly=on"}, []string{"/govmm", "-initrd", "my.cpio", "-drive", "readonly=on"}, nil},
	}
	for _, tt := range tests {
		got, drives := passDrives(tt.args, "/w")
		if !slices.Equal(got, tt.want) || !slices.Equal(drives, tt.drives) {
			t.Errorf("passDrives(%q) = %q, %+v, want %q, %+v", tt.args, got, drives, tt.want, tt.drives)
		}
	}
}
