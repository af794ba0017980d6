package kvm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kvm")
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) = nil error, want one", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(%s) = %v, want it to wrap fs.ErrNotExist", path, err)
	}
	for _, hint := range []string{"kvm_intel", "kvm_amd"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("Open(%s) = %q, want it to mention %s", path, err, hint)
		}
	}
}

func TestOpenError(t *testing.T) {
	tests := []struct {
		errno unix.Errno
		want  string
	}{
		{unix.ENOENT, "load the kvm_intel or kvm_amd module"},
		{unix.EACCES, "add your user to the kvm group"},
		{unix.EPERM, "add your user to the kvm group"},
		{unix.ENXIO, "open /dev/kvm: no such device or address"},
	}
	for _, tt := range tests {
		pe := &fs.PathError{Op: "open", Path: "/dev/kvm", Err: tt.errno}
		err := openError("/dev/kvm", pe)
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("openError(%v) = %q, want it to contain %q", tt.errno, err, tt.want)
		}
		if !errors.Is(err, tt.errno) {
			t.Errorf("openError(%v) = %v, want it to wrap the errno", tt.errno, err)
		}
	}
}

// TestOpenNotKVM opens a plain file: the API version ioctl fails and Open
// reports it instead of returning a System.
func TestOpenNotKVM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-kvm")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatalf("Open(regular file) = nil error, want one")
	}
	if !errors.Is(err, unix.ENOTTY) || !strings.Contains(err.Error(), "KVM_GET_API_VERSION") {
		t.Errorf("Open(regular file) = %v, want KVM_GET_API_VERSION wrapping ENOTTY", err)
	}
}
