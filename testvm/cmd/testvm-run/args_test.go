package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fakeInfo is what fakeStat returns: only the mode matters.
type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// fakeStat is a file system of the paths in files.
func fakeStat(files map[string]fs.FileMode) func(string) (fs.FileInfo, error) {
	return func(p string) (fs.FileInfo, error) {
		m, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return fakeInfo{m}, nil
	}
}

func TestArgFiles(t *testing.T) {
	host := map[string]fs.FileMode{
		"/w/my.cpio":    0o644,
		"/w/disk.img":   0o644,
		"/w/fixtures":   fs.ModeDir | 0o755,
		"/w":            fs.ModeDir | 0o755,
		"/k/bzImage":    0o644,
		"/other/x.img":  0o644,
		"/tmp/sock":     fs.ModeSocket | 0o755,
		"/dev/kvm":      fs.ModeDevice | fs.ModeCharDevice | 0o666,
		"/proc/cpuinfo": 0o444,
		"/":             fs.ModeDir | 0o755,
	}
	tests := []struct {
		name      string
		args      []string
		wantFiles []string
		wantArgs  []string // nil: args unchanged
	}{
		{"flag and value", []string{"-initrd", "my.cpio", "-kernel", "/k/bzImage"}, []string{"/w/my.cpio", "/k/bzImage"}, nil},
		{"-flag=value", []string{"-initrd=my.cpio", "--kernel=/k/bzImage"}, []string{"/w/my.cpio", "/k/bzImage"}, nil},
		{"key=value list", []string{"-drive", "file=disk.img,readonly=on"}, []string{"/w/disk.img"}, nil},
		{"flag=key=value list", []string{"-drive=if=virtio,file=/w/disk.img"}, []string{"/w/disk.img"}, nil},
		{"bare list parts", []string{"my.cpio,disk.img,nothing"}, []string{"/w/my.cpio", "/w/disk.img"}, nil},
		{"a directory", []string{"-data", "fixtures/"}, []string{"/w/fixtures"}, nil},
		{"each once", []string{"my.cpio", "./my.cpio", "/w/my.cpio"}, []string{"/w/my.cpio"}, nil},
		{"outside the working directory", []string{"-disk", "../other/x.img", "-o", "file=../other/x.img"}, []string{"/other/x.img"},
			[]string{"-disk", "/other/x.img", "-o", "file=/other/x.img"}},
		{"not files", []string{"-mem", "512M", "-serial", "stdio", "-append", "console=ttyS0 reboot=k panic=-1", "-v", "", "-x="}, nil, nil},
		{"never the root, devices, sockets or /proc", []string{"/", "-kvm", "/dev/kvm", "/tmp/sock", "/proc/cpuinfo", "-kvm=/dev/kvm"}, nil, nil},
		{"the working directory itself", []string{"-cache", "."}, []string{"/w"}, nil},
	}
	for _, tt := range tests {
		a := argFiles{wd: "/w", stat: fakeStat(host)}
		got := a.scan(tt.args)
		want := tt.wantArgs
		if want == nil {
			want = tt.args
		}
		if !slices.Equal(a.files, tt.wantFiles) || !slices.Equal(got, want) {
			t.Errorf("scan(%s: %q) = %q, files %q; want %q, files %q", tt.name, tt.args, got, a.files, want, tt.wantFiles)
		}
	}
}

// TestArgFilesOnDisk checks argFiles with os.Stat on real files.
func TestArgFilesOnDisk(t *testing.T) {
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "disk.img"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := argFiles{wd: wd, stat: os.Stat}
	args := []string{"-drive", "file=disk.img,readonly=on", "-initrd", "missing.cpio"}
	if got := a.scan(args); !slices.Equal(got, args) || !slices.Equal(a.files, []string{filepath.Join(wd, "disk.img")}) {
		t.Errorf("scan(%q) = %q, files %q; want the args unchanged and %s", args, got, a.files, filepath.Join(wd, "disk.img"))
	}
}
