package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine/machinetest"
)

// fcClient speaks to govmm firecracker's socket.
type fcClient struct {
	t    *testing.T
	sock string
	c    *http.Client
}

func newFCClient(t *testing.T, sock string) *fcClient {
	return &fcClient{t: t, sock: sock, c: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}}
}

// do sends a request and returns the status and body, failing the test
// if the answer takes longer than the SDK waits (500 ms; 250 ms for PUT
// /drives, which this test leaves under the same bound).
func (c *fcClient) do(method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	t0 := time.Now()
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if d := time.Since(t0); d > 500*time.Millisecond {
		c.t.Errorf("%s %s took %v, more than the SDK's 500 ms", method, path, d)
	}
	return resp.StatusCode, string(b), err
}

// must sends a request that must answer status, and returns the body.
func (c *fcClient) must(method, path, body string, status int) string {
	c.t.Helper()
	st, out, err := c.do(method, path, body)
	if err != nil || st != status {
		c.t.Fatalf("%s %s %s = %d %q, %v; want %d", method, path, body, st, out, err, status)
	}
	return out
}

func (c *fcClient) state() string {
	c.t.Helper()
	var info struct{ State string }
	if err := json.Unmarshal([]byte(c.must("GET", "/", "", 200)), &info); err != nil {
		c.t.Fatal(err)
	}
	return info.State
}

// startFirecracker runs govmm firecracker (a child process, seccomp on)
// and waits until its socket answers, which must be within 3 s.
func startFirecracker(t *testing.T, sock string, args ...string) (*govmmRun, *fcClient) {
	t.Helper()
	g := &govmmRun{out: newRoundsOut(), stderr: machinetest.NewConsole(), done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	t0 := time.Now()
	go func() {
		st, err := run(ctx, append([]string{fcName, "--api-sock", sock}, args...), nil, g.out, g.stderr)
		g.status = st
		g.done <- err
	}()
	c := newFCClient(t, sock)
	for {
		if _, _, err := c.do("GET", "/", ""); err == nil {
			break
		}
		if time.Since(t0) > 3*time.Second {
			t.Fatalf("the socket did not answer within 3 s of launch\nstderr:\n%s", g.stderr.String())
		}
		select {
		case err := <-g.done:
			t.Fatalf("govmm firecracker ended (%d, %v) before its socket answered\nstderr:\n%s", g.status, err, g.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Logf("socket answering %v after launch", time.Since(t0).Round(time.Millisecond))
	return g, c
}

// waitOut waits until the guest's console says s.
func (g *govmmRun) waitConsole(t *testing.T, s string) {
	t.Helper()
	limit := time.After(time.Minute)
	for !strings.Contains(g.out.String(), s) {
		select {
		case <-g.out.More():
		case err := <-g.done:
			g.done <- err
			t.Fatalf("govmm ended (status %d, %v) before the guest said %q\nconsole:\n%s\nstderr:\n%s", g.status, err, s, g.out.String(), g.stderr.String())
		case <-limit:
			t.Fatalf("the guest did not say %q in a minute\nconsole:\n%s\nstderr:\n%s", s, g.out.String(), g.stderr.String())
		}
	}
}

// TestFirecrackerAPIRunsTestGuest drives govmm firecracker through its
// socket as the SDK does, on the test guest that waits for the power
// button: configure (with an empty placeholder drive, as Kata and
// firecracker-containerd give), start, patch the drive (its own file
// again, then another file of another size: the swap), pause, snapshot
// (which names the swapped-in file), resume, flush metrics, then
// SendCtrlAltDel (typed on the i8042's keyboard; the guest resets) ends the guest and the process exits
// 0, after which the API is gone. The snapshot is loaded in a fresh
// process, which goes on waiting for the button where the guest was.
func TestFirecrackerAPIRunsTestGuest(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "fc.sock")
	// Landlock confines it to dir once the guest runs: the snapshot
	// below is written there.
	run1, c := startFirecracker(t, sock, "--id", "guest_1", "--allowed-dir", dir, "--allowed-dir", filepath.Dir(g.BzImage))
	if s := c.state(); s != "Not started" {
		t.Fatalf("state %q before the start", s)
	}
	metrics := filepath.Join(dir, "metrics.json")
	c.must("PUT", "/metrics", fmt.Sprintf(`{"metrics_path":%q}`, metrics), 204)
	c.must("PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":64,"smt":false}`, 204)
	c.must("PUT", "/boot-source", fmt.Sprintf(`{"kernel_image_path":%q,"boot_args":"console=ttyS0 reboot=k panic=1 pci=off mode=powerbutton"}`, g.BzImage), 204)
	disk, other := filepath.Join(dir, "disk.img"), filepath.Join(dir, "other.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil { // a placeholder: 0 sectors
		t.Fatal(err)
	}
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	c.must("PUT", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q,"is_root_device":false,"is_read_only":false}`, disk), 204)
	t0 := time.Now()
	c.must("PUT", "/actions", `{"action_type":"InstanceStart"}`, 204)
	t.Logf("InstanceStart answered in %v", time.Since(t0).Round(time.Microsecond))
	run1.waitConsole(t, "powerbutton: waiting for the power button")
	if s := c.state(); s != "Running" {
		t.Fatalf("state %q after InstanceStart", s)
	}
	c.must("PUT", "/boot-source", fmt.Sprintf(`{"kernel_image_path":%q}`, g.BzImage), 400)
	if out := c.must("PATCH", "/drives/scratch", `{"drive_id":"scratch","path_on_host":"/etc/hostname"}`, 400); !strings.Contains(out, "outside the folders") {
		t.Errorf("PATCH /drives outside --allowed-dir: %s", out)
	}
	// The drive's own file again: re-read, a configuration-change
	// interrupt. Another file, of another size: swapped in. A folder or
	// a missing file: refused, the drive unchanged.
	c.must("PATCH", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q}`, disk), 204)
	c.must("PATCH", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q}`, other), 204)
	c.must("PATCH", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q}`, dir), 400)
	c.must("PATCH", "/drives/scratch", fmt.Sprintf(`{"drive_id":"scratch","path_on_host":%q}`, filepath.Join(dir, "missing.img")), 400)
	c.must("PATCH", "/vm", `{"state":"Paused"}`, 204)
	if s := c.state(); s != "Paused" {
		t.Fatalf("state %q after pausing", s)
	}
	state, mem := filepath.Join(dir, "vm.snap"), filepath.Join(dir, "vm.mem")
	c.must("PUT", "/snapshot/create", fmt.Sprintf(`{"snapshot_type":"Full","snapshot_path":%q,"mem_file_path":%q}`, state, mem), 204)
	c.must("PATCH", "/vm", `{"state":"Resumed"}`, 204)
	c.must("PUT", "/actions", `{"action_type":"FlushMetrics"}`, 204)
	checkMetrics(t, metrics)
	c.must("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 204)
	run1.waitConsole(t, "ctrl-alt-del pressed")
	run1.end(t)
	if st, out, err := c.do("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`); err == nil {
		t.Errorf("SendCtrlAltDel after the guest ended = %d %q, want it to fail", st, out)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is left behind: %v", err)
	}

	// The snapshot, in a fresh process: its drive is the swapped-in
	// file (the placeholder's 0 sectors would be refused as another disk).
	sock2 := filepath.Join(dir, "fc2.sock")
	run2, c2 := startFirecracker(t, sock2)
	c2.must("PUT", "/snapshot/load", fmt.Sprintf(`{"snapshot_path":%q,"mem_backend":{"backend_type":"File","backend_path":%q},"resume_vm":true}`, state, mem), 204)
	if s := c2.state(); s != "Running" {
		t.Fatalf("state %q after loading with resume_vm", s)
	}
	var mc struct {
		VCPUCount  int `json:"vcpu_count"`
		MemSizeMiB int `json:"mem_size_mib"`
	}
	if err := json.Unmarshal([]byte(c2.must("GET", "/machine-config", "", 200)), &mc); err != nil || mc.MemSizeMiB != 64 || mc.VCPUCount != 1 {
		t.Errorf("the loaded machine's config %+v, %v; want 1 vCPU, 64 MiB", mc, err)
	}
	c2.must("PUT", "/snapshot/load", fmt.Sprintf(`{"snapshot_path":%q,"mem_file_path":%q}`, state, mem), 400)
	c2.must("PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 204)
	run2.waitConsole(t, "ctrl-alt-del pressed")
	run2.end(t)
	if strings.Contains(run2.out.String(), "testguest:") {
		t.Errorf("the loaded guest booted again instead of going on:\n%s", run2.out.String())
	}
}

// checkMetrics wants one JSON object a line, with the machine's counters.
func checkMetrics(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var m struct {
			UTCTimestampMs int64           `json:"utc_timestamp_ms"`
			Govmm          json.RawMessage `json:"govmm"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.UTCTimestampMs == 0 || !strings.Contains(string(m.Govmm), "vcpus") {
			t.Errorf("metrics line %q: %+v, %v", sc.Text(), m, err)
		}
		lines++
	}
	if lines != 1 {
		t.Errorf("%d metrics lines after one FlushMetrics, want 1", lines)
	}
}

// TestFirecrackerConfigFile is flintlock's way: --no-api --config-file
// (kebab-case sections, and flintlock's MmdsConfig section, which
// Firecracker ignores as unknown), --metadata, --boot-timer and --id; the
// guest boots at once and its status is govmm's.
func TestFirecrackerConfigFile(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vm.json")
	meta := filepath.Join(dir, "metadata.json")
	logf := filepath.Join(dir, "fc.log")
	file := fmt.Sprintf(`{
  "boot-source": {"kernel_image_path": %q, "boot_args": "console=ttyS0 reboot=k panic=1 mode=check loops=1000"},
  "drives": [],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "smt": false},
  "network-interfaces": [],
  "logger": {"log_path": %q, "level": "Info", "show_level": true, "show_log_origin": true},
  "MmdsConfig": {"network_interfaces": [], "version": "V1"}
}`, g.BzImage, logf)
	if err := os.WriteFile(cfg, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, []byte(`{"latest":{"meta-data":{"instance-id":"i-1"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr := machinetest.NewConsole(), machinetest.NewConsole()
	// flintlock's arguments, in its order (infrastructure/firecracker/create.go).
	status, err := run(context.Background(), []string{fcName, "--id", "flint_1", "--boot-timer", "--no-api", "--config-file", cfg, "--metadata", meta}, nil, out, stderr)
	if err != nil || status != 0 {
		t.Fatalf("govmm firecracker --no-api --config-file = %d, %v\nstderr:\n%s", status, err, stderr.String())
	}
	if !strings.Contains(out.String(), "ring3 ok") {
		t.Errorf("the guest's console lacks ring3 ok:\n%s", out.String())
	}
	for _, want := range []string{"govmm has no MMDS", "ignoring the sections Firecracker does not know, as it does: MmdsConfig"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	log, err := os.ReadFile(logf)
	if err != nil || !strings.Contains(string(log), "[flint_1:INFO] Running Firecracker v1.4.1") {
		t.Errorf("log file %q, %v", log, err)
	}
	// A file govmm cannot honour is refused before anything runs.
	bad := strings.Replace(file, `"drives": [],`, `"drives": [], "vsock": {"guest_cid": 3, "uds_path": "/tmp/v.sock"},`, 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	status, err = run(context.Background(), []string{fcName, "--no-api", "--config-file", cfg}, nil, out, stderr)
	if status == 0 || err == nil || !strings.Contains(err.Error(), "vsock is not implemented") {
		t.Errorf("a config file with vsock = %d, %v; want refused", status, err)
	}
}
