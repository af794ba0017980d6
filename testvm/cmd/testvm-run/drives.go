package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/govmm/govmm/testvm"
)

// passDrives finds govmm's -drive arguments (-drive VALUE, -drive=VALUE,
// with one dash or two) and gives their files to the VM as disks instead
// of copies: each file= becomes /dev/vda, /dev/vdb, ... in the VM, and the
// host file itself is the disk (testvm.Config.Drives), so what the guest
// writes and syncs is in it. Relative paths are resolved against wd.
func passDrives(args []string, wd string) ([]string, []testvm.Drive) {
	out := append([]string{}, args...)
	var drives []testvm.Drive
	rewrite := func(v string) string {
		parts := strings.Split(v, ",")
		var d testvm.Drive
		at := -1
		for i, p := range parts {
			switch {
			case strings.HasPrefix(p, "file="):
				at, d.Path = i, strings.TrimPrefix(p, "file=")
			case p == "readonly=on":
				d.ReadOnly = true
			}
		}
		if at < 0 || d.Path == "" {
			return v
		}
		if !filepath.IsAbs(d.Path) {
			d.Path = filepath.Join(wd, d.Path)
		}
		parts[at] = "file=" + testvm.DriveDevice(len(drives))
		drives = append(drives, d)
		return strings.Join(parts, ",")
	}
	for i := 1; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "drive" {
			continue
		}
		if hasValue {
			out[i] = a[:len(a)-len(value)] + rewrite(value)
		} else if i+1 < len(out) {
			out[i+1] = rewrite(out[i+1])
			i++
		}
	}
	return out, drives
}

// describeDrives says which host files became which disks.
func describeDrives(drives []testvm.Drive) string {
	var parts []string
	for i, d := range drives {
		parts = append(parts, fmt.Sprintf("%s as %s", d.Path, testvm.DriveDevice(i)))
	}
	return strings.Join(parts, ", ")
}
