package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/images/imagesenv"
)

// TestFirecrackerLinuxDriveHotplug is Kata's and firecracker-containerd's
// hot-plug through govmm firecracker: Debian's kernel boots with an empty
// placeholder drive (/dev/vda of 0 sectors); PATCH /drives puts a 1 MiB
// image behind it; Linux's virtio_blk takes the configuration change
// interrupt, re-reads the capacity ("[vda] new size"), and reads the new
// file's bytes. Full Linux: in the emulated machine on PVM hosts.
func TestFirecrackerLinuxDriveHotplug(t *testing.T) {
	cache := requireImages(t)
	g, err := imagesenv.Load(cache)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	placeholder, image := filepath.Join(dir, "placeholder"), filepath.Join(dir, "image.img")
	if err := os.WriteFile(placeholder, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const mark = "govmm-hotplugged-image"
	content := append([]byte(mark+"\n"), bytes.Repeat([]byte{0}, 1<<20-len(mark)-1)...)
	if err := os.WriteFile(image, content, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `echo PLACEHOLDER-SIZE $(cat /sys/block/vda/size)
i=0
while [ "$(cat /sys/block/vda/size)" = 0 ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
echo NEW-SIZE $(cat /sys/block/vda/size)
head -c 22 /dev/vda; echo
dmesg | grep 'new size'
echo HOTPLUG-DONE
sleep 600`
	run1, c := startFirecracker(t, filepath.Join(dir, "fc.sock"), "--cache", cache)
	c.must("PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":512}`, 204)
	bootArgs := "console=ttyS0 reboot=k panic=-1 quiet " + images.AgentCommandLine(script, false)
	c.must("PUT", "/boot-source", fmt.Sprintf(`{"kernel_image_path":%q,"initrd_path":%q,"boot_args":%q}`, g.Kernel, g.Initrd, bootArgs), 204)
	c.must("PUT", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q,"is_root_device":false,"is_read_only":false}`, placeholder), 204)
	// InstanceStart, without the SDK's 500 ms bound (which
	// TestFirecrackerAPIRunsTestGuest holds govmm to): in the emulated
	// machine, building the machine for Debian's kernel takes seconds.
	req, err := http.NewRequest("PUT", "http://localhost/actions", strings.NewReader(`{"action_type":"InstanceStart"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("InstanceStart = %d, want 204\nstderr:\n%s", resp.StatusCode, run1.stderr.String())
	}
	run1.waitOut(t, "PLACEHOLDER-SIZE 0", 3*time.Minute)
	t0 := time.Now()
	c.must("PATCH", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q}`, image), 204)
	run1.waitOut(t, "HOTPLUG-DONE", time.Minute)
	t.Logf("the guest saw the new drive %v after the PATCH", time.Since(t0).Round(time.Millisecond))
	out := run1.out.String()
	t.Logf("the guest: %q, %q", lastLine(out, "NEW-SIZE"), lastLine(out, "new size"))
	for _, want := range []string{"NEW-SIZE 2048", mark, "[vda] new size: 2048 512-byte logical blocks"} {
		if !strings.Contains(out, want) {
			t.Errorf("the guest's output lacks %q:\n%s", want, out)
		}
	}
	c.must("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 204)
	run1.end(t)
}
