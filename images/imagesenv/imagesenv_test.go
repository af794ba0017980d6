package imagesenv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteRead(t *testing.T) {
	g := Guest{Kernel: "/c/debian-kernel/6.1/boot/vmlinuz-6.1.0-57-cloud-amd64", Release: "6.1.0-57-cloud-amd64", Initrd: "/c/initrd/48033dc9550a3b85.cpio"}
	var b bytes.Buffer
	if err := Write(&b, g); err != nil {
		t.Fatalf("Write(%+v) = %v", g, err)
	}
	want := "kernel=/c/debian-kernel/6.1/boot/vmlinuz-6.1.0-57-cloud-amd64\nrelease=6.1.0-57-cloud-amd64\ninitrd=/c/initrd/48033dc9550a3b85.cpio\n"
	if b.String() != want {
		t.Errorf("Write(%+v) wrote %q, want %q", g, b.String(), want)
	}
	got, err := Read(&b)
	if err != nil || got != g {
		t.Errorf("Read(Write(%+v)) = %+v, %v, want the same", g, got, err)
	}
	g.Generic = "/c/generic-kernel/debian-kernel/6.1/boot/vmlinuz-6.1.0-57-amd64"
	b.Reset()
	if err := Write(&b, g); err != nil || !strings.HasSuffix(b.String(), "\ngeneric="+g.Generic+"\n") {
		t.Errorf("Write(%+v) = %v, wrote %q, want a generic= line last", g, err, b.String())
	}
	if got, err := Read(&b); err != nil || got != g {
		t.Errorf("Read(Write(%+v)) = %+v, %v, want the same", g, got, err)
	}
	if got, want := strings.Join(g.Files(), " "), g.Kernel+" "+g.Initrd+" "+g.Generic; got != want {
		t.Errorf("Files() = %q, want %q", got, want)
	}
	if got := (Guest{Kernel: "/k"}).Files(); len(got) != 1 || got[0] != "/k" {
		t.Errorf("Guest{Kernel: /k}.Files() = %q, want just /k", got)
	}
	if err := Write(&b, Guest{Kernel: "a\nb"}); err == nil {
		t.Errorf("Write(kernel with a newline) = nil, want an error")
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		in      string
		want    Guest
		wantErr string
	}{
		{"kernel=k\ninitrd=i\n", Guest{Kernel: "k", Initrd: "i"}, ""},
		{"# made by mkimages\n\nkernel=k=1\r\nfuture=x\n", Guest{Kernel: "k=1"}, ""},
		{"kernel\n", Guest{}, "want key=value"},
		{"kernel=a\nkernel=b\n", Guest{}, "twice"},
	}
	for _, tt := range tests {
		got, err := Read(strings.NewReader(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Read(%q) = %+v, %v, want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Read(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, ErrNoFile) || !strings.Contains(err.Error(), "make images") {
		t.Errorf("Load(empty folder) = %v, want ErrNoFile saying to run make images", err)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(Path(dir), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kernel=/k\nrelease=r\ninitrd=/i\n")
	if got, want := Path(dir), filepath.Join(dir, "images.env"); got != want {
		t.Errorf("Path(%q) = %q, want %q", dir, got, want)
	}
	if got, err := Load(dir); err != nil || got != (Guest{Kernel: "/k", Release: "r", Initrd: "/i"}) {
		t.Errorf("Load() = %+v, %v", got, err)
	}
	write("kernel=/k\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no initrd") {
		t.Errorf("Load(no initrd) = %v, want an error naming the missing initrd", err)
	}
	write("kernel\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("Load(malformed) = %v, want the parse error", err)
	}
}
