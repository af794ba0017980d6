package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm/firecracker"
)

func TestFirecrackerFlags(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "exists.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no-api needs config", []string{"--no-api"}, "--no-api needs --config-file"},
		{"seccomp flags exclusive", []string{"--no-seccomp", "--seccomp-filter", "/f"}, "give one"},
		{"level needs log path", []string{"--level", "Info"}, "need --log-path"},
		{"bad id", []string{"--id", "a/b"}, "--id"},
		{"long id", []string{"--id", strings.Repeat("a", 65)}, "--id"},
		{"payload size", []string{"--http-api-max-payload-size", "100"}, "only the default"},
		{"describe snapshot", []string{"--describe-snapshot", "/s"}, "own format"},
		{"argument", []string{"extra"}, "unexpected arguments"},
		{"unknown flag", []string{"--vsock"}, "unknown flag"},
		{"socket exists", []string{"--api-sock", sock}, "the path exists"},
		{"config file missing", []string{"--api-sock", filepath.Join(dir, "a.sock"), "--config-file", filepath.Join(dir, "nope.json")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			status, err := runFirecracker(context.Background(), tc.args, &bytes.Buffer{}, &stderr)
			if err == nil || status == 0 || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("govmm firecracker %q = %d, %v; want an error with %q", tc.args, status, err, tc.err)
			}
		})
	}
	// The jailer's flags are taken.
	o, err := parseFirecrackerFlags([]string{"--id", "vm-1_a", "--start-time-us", "12", "--start-time-cpu-us", "3", "--parent-cpu-time-us", "4", "--api-sock", "/run/x.sock"}, &bytes.Buffer{})
	if err != nil || o.id != "vm-1_a" || o.startTimeUs != 12 {
		t.Errorf("jailer flags: %+v, %v", o, err)
	}
}

// Kata reads the version from the first line.
func TestFirecrackerVersion(t *testing.T) {
	var out bytes.Buffer
	if status, err := runFirecracker(context.Background(), []string{"--version"}, &out, &bytes.Buffer{}); status != 0 || err != nil {
		t.Fatalf("--version = %d, %v", status, err)
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); first != "Firecracker v1.4.1" {
		t.Errorf("--version's first line %q, want Firecracker v1.4.1", first)
	}
}

func TestFirecrackerBootArgs(t *testing.T) {
	c := fcConfigForTest()
	args, dropped := bootArgs(c)
	if args != "console=ttyS0 reboot=k panic=1 root=PARTUUID=abcd ro" || len(dropped) != 1 {
		t.Errorf("bootArgs = %q, dropped %q", args, dropped)
	}
	devs := deviceWords(c)
	want := []string{
		"virtio-blk,file=/img/root,,1.ext4,readonly=on,cache=unsafe,serial=rootfs",
		"virtio-blk,file=/img/data,cache=writeback,serial=a_very_long_drive_id",
		"virtio-net,tap=tap0,mac=06:00:ac:10:00:02",
	}
	for i, d := range devs {
		if i >= len(want) || string(d) != want[i] {
			t.Errorf("device %d %q, want %q", i, d, want)
		}
	}
}

// fcConfigForTest is a configuration as the API builds it: the root
// drive first.
func fcConfigForTest() firecracker.VMConfig {
	return firecracker.VMConfig{
		Machine:    firecracker.MachineConfig{VCPUCount: 1, MemSizeMiB: 64},
		BootSource: &firecracker.BootSource{KernelImagePath: "/k", BootArgs: "console=ttyS0 reboot=k panic=1 pci=off"},
		Drives: []firecracker.Drive{
			{DriveID: "rootfs", PathOnHost: "/img/root,1.ext4", IsRootDevice: true, IsReadOnly: true, PartUUID: "abcd"},
			{DriveID: "a_very_long_drive_id_indeed", PathOnHost: "/img/data", CacheType: "Writeback"},
		},
		Nets: []firecracker.NetworkInterface{{IfaceID: "eth0", HostDevName: "tap0", GuestMAC: "06:00:ac:10:00:02"}},
	}
}

// copySparse copies a file's data and keeps its holes.
func TestCopySparse(t *testing.T) {
	dir := t.TempDir()
	src, err := os.Create(filepath.Join(dir, "src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const size = 64 << 20
	for _, off := range []int64{0, 32 << 20, size - 4096} {
		if _, err := src.WriteAt(bytes.Repeat([]byte{byte(off>>20) + 1}, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := copySparse(dst, src); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(src.Name())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("the copy differs (%d bytes, want %d)", len(b), len(a))
	}
	st, err := dst.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 1<<20 {
		t.Errorf("the copy takes %d bytes on disk: its holes were filled", sys.Blocks*512)
	}
}
