package firecracker

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
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeVMM records what the server asked of it.
type fakeVMM struct {
	mu      sync.Mutex
	calls   []string
	started *VMConfig
	ended   bool // the guest has ended: every call fails
}

func (f *fakeVMM) record(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return errors.New("the guest has ended")
	}
	f.calls = append(f.calls, s)
	return nil
}

func (f *fakeVMM) Start(ctx context.Context, c VMConfig) error {
	f.started = &c
	return f.record("start")
}

func (f *fakeVMM) Load(ctx context.Context, l SnapshotLoad) (MachineConfig, error) {
	return MachineConfig{VCPUCount: 2, MemSizeMiB: 256}, f.record("load " + l.SnapshotPath + " " + l.MemPath())
}
func (f *fakeVMM) Pause(context.Context) error { return f.record("pause") }
func (f *fakeVMM) Resume() error               { return f.record("resume") }
func (f *fakeVMM) CtrlAltDel() error           { return f.record("ctrl-alt-del") }
func (f *fakeVMM) UpdateDrive(ctx context.Context, id, path string) error {
	return f.record("update-drive " + id + " " + path)
}
func (f *fakeVMM) Snapshot(ctx context.Context, s SnapshotCreate) error {
	return f.record("snapshot " + s.SnapshotPath + " " + s.MemFilePath)
}
func (f *fakeVMM) Metrics() any { return map[string]int{"exits": 7} }

func (f *fakeVMM) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// fixture is a folder with the files the recorded requests name.
type fixture struct {
	dir string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"vmlinux", "initrd.img", "rootfs.ext4", "data.img", "stub0", "stub1", "drive_0", "snap.state", "snap.mem"} {
		size := 4096
		if name == "drive_0" {
			size = 0 // Kata's placeholders are empty files
		}
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, fifo := range []string{"log.fifo", "metrics.fifo"} {
		if err := syscall.Mkfifo(filepath.Join(dir, fifo), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{dir}
}

// expand puts the fixture's folder where a recorded request says $D.
func (fx fixture) expand(s string) string { return strings.ReplaceAll(s, "$D", fx.dir) }

// step is one request of a recorded sequence and the answer it must get.
type step struct {
	method, path, body string
	status             int
	// want is the answer's body: JSON compared by value for a 200, a
	// part of the fault_message for a 400.
	want string
}

func (st step) String() string { return st.method + " " + st.path }

// replay sends steps to s and checks every answer.
func replay(t *testing.T, fx fixture, s *Server, steps []step) {
	t.Helper()
	for i, st := range steps {
		status, out := s.Handle(context.Background(), st.method, st.path, []byte(fx.expand(st.body)))
		if status != st.status {
			t.Fatalf("step %d %v: status %d (%s), want %d", i, st, status, out, st.status)
		}
		checkAnswer(t, fmt.Sprintf("step %d %v", i, st), status, out, fx.expand(st.want))
	}
}

func checkAnswer(t *testing.T, what string, status int, out []byte, want string) {
	t.Helper()
	switch status {
	case http.StatusNoContent:
		if len(out) != 0 {
			t.Errorf("%s: 204 with a body %q", what, out)
		}
	case http.StatusOK:
		var got, exp any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: answer %q: %v", what, out, err)
		}
		if want == "" {
			return
		}
		if err := json.Unmarshal([]byte(want), &exp); err != nil {
			t.Fatalf("%s: the test's want %q: %v", what, want, err)
		}
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%s: answer %s, want %s", what, out, want)
		}
	case http.StatusBadRequest:
		var f Fault
		dec := json.NewDecoder(strings.NewReader(string(out)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil || f.FaultMessage == "" {
			t.Fatalf("%s: error answer %q is not {\"fault_message\": ...}: %v", what, out, err)
		}
		if !strings.Contains(f.FaultMessage, want) {
			t.Errorf("%s: fault_message %q, want it to contain %q", what, f.FaultMessage, want)
		}
	default:
		t.Errorf("%s: status %d: Firecracker answers 200, 204 or 400", what, status)
	}
}

const (
	notStartedInfo = `{"app_name":"Firecracker","id":"anonymous-instance","state":"Not started","started":false,"vmm_version":"1.4.1"}`
	runningInfo    = `{"app_name":"Firecracker","id":"anonymous-instance","state":"Running","started":true,"vmm_version":"1.4.1"}`
	pausedInfo     = `{"app_name":"Firecracker","id":"anonymous-instance","state":"Paused","started":true,"vmm_version":"1.4.1"}`
)

// The recorded sequences: what each tool sends, in order, as its source
// shows, with Firecracker's answers (and govmm's where it differs, said
// beside them).
var sequences = map[string][]step{
	// firectl (cmd/firectl via firecracker-go-sdk v1.0.0's default
	// handlers, machine.go and handlers.go): the SDK polls GET
	// /machine-config until the socket answers (waitForSocket), sets up
	// the logger and metrics FIFOs (setupLogging, setupMetrics), the
	// machine (createMachine, then refreshMachineConfiguration's GET),
	// the boot source, the root drive "root_drive" then drives "1", ...
	// (DrivesBuilder), interfaces "1", ... (createNetworkInterfaces),
	// InstanceStart; Shutdown is SendCtrlAltDel.
	"firectl": {
		{"GET", "/machine-config", "", 200, `{"vcpu_count":1,"mem_size_mib":128,"smt":false,"track_dirty_pages":false}`},
		{"PUT", "/logger", `{"log_path":"$D/log.fifo","level":"Debug","show_level":true,"show_log_origin":false}`, 204, ""},
		{"PUT", "/metrics", `{"metrics_path":"$D/metrics.fifo"}`, 204, ""},
		{"PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":512,"smt":false}`, 204, ""},
		{"GET", "/machine-config", "", 200, `{"vcpu_count":1,"mem_size_mib":512,"smt":false,"track_dirty_pages":false}`},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux","boot_args":"ro console=ttyS0 noapic reboot=k panic=1 pci=off nomodules"}`, 204, ""},
		{"PUT", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"$D/rootfs.ext4","is_root_device":true,"is_read_only":false}`, 204, ""},
		{"PUT", "/drives/1", `{"drive_id":"1","path_on_host":"$D/data.img","is_root_device":false,"is_read_only":true}`, 204, ""},
		{"PUT", "/network-interfaces/1", `{"iface_id":"1","host_dev_name":"tap0","guest_mac":"06:00:AC:10:00:02"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 204, ""},
		{"GET", "/", "", 200, runningInfo},
		{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 204, ""},
	},
	// firecracker-containerd (runtime/service.go with the SDK; stub
	// drives from runtime/drive_handler.go): the same boot, with one stub
	// drive per container, named by the base32 of the stub file's name
	// (ctrstub0 -> MN2HE43UOVRDA), files padded to whole sectors, and its
	// agent's vsock, which govmm refuses (no vsock). At runtime a
	// container's image is patched into a stub drive, and patched back to
	// the stub file when the container goes.
	"firecracker-containerd": {
		{"GET", "/machine-config", "", 200, ""},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":2048,"smt":false}`, 204, ""},
		{"GET", "/machine-config", "", 200, `{"vcpu_count":2,"mem_size_mib":2048,"smt":false,"track_dirty_pages":false}`},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux","boot_args":"console=ttyS0 noapic reboot=k panic=1 pci=off nomodules ro systemd.unified_cgroup_hierarchy=0 systemd.journald.forward_to_console systemd.log_color=false systemd.unit=firecracker.target init=/sbin/overlay-init"}`, 204, ""},
		{"PUT", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"$D/rootfs.ext4","is_root_device":true,"is_read_only":true}`, 204, ""},
		{"PUT", "/drives/MN2HE43UOVRDA", `{"drive_id":"MN2HE43UOVRDA","path_on_host":"$D/stub0","is_root_device":false,"is_read_only":false}`, 204, ""},
		{"PUT", "/drives/MN2HE43UOVRDC", `{"drive_id":"MN2HE43UOVRDC","path_on_host":"$D/stub1","is_root_device":false,"is_read_only":false}`, 204, ""},
		{"PUT", "/vsock", `{"guest_cid":3,"uds_path":"$D/firecracker.vsock","vsock_id":"agent_api"}`, 400, "vsock is not implemented in govmm"},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 204, ""},
		{"PATCH", "/drives/MN2HE43UOVRDA", `{"drive_id":"MN2HE43UOVRDA","path_on_host":"$D/data.img"}`, 204, ""},
		{"GET", "/", "", 200, runningInfo},
		{"PATCH", "/drives/MN2HE43UOVRDA", `{"drive_id":"MN2HE43UOVRDA","path_on_host":"$D/stub0"}`, 204, ""},
	},
	// firecracker-go-sdk v1.0.0's snapshot path (loadSnapshotHandlerList:
	// the VMM, logging, then LoadSnapshot) in a fresh process.
	"sdk-load-snapshot": {
		{"GET", "/machine-config", "", 200, ""},
		{"PUT", "/snapshot/load", `{"snapshot_path":"$D/snap.state","mem_file_path":"$D/snap.mem","resume_vm":true}`, 204, ""},
		{"GET", "/", "", 200, runningInfo},
		{"GET", "/machine-config", "", 200, `{"vcpu_count":2,"mem_size_mib":256,"smt":false,"track_dirty_pages":false}`},
		{"PATCH", "/vm", `{"state":"Paused"}`, 204, ""},
		{"PUT", "/snapshot/create", `{"snapshot_path":"$D/snap2.state","mem_file_path":"$D/snap2.mem","snapshot_type":"Full"}`, 204, ""},
	},
}

// wantCalls are what each sequence must have asked of the VMM.
var wantCalls = map[string][]string{
	"firectl":                {"start", "ctrl-alt-del"},
	"firecracker-containerd": {"start", "update-drive MN2HE43UOVRDA $D/data.img", "update-drive MN2HE43UOVRDA $D/stub0"},
	"sdk-load-snapshot":      {"load $D/snap.state $D/snap.mem", "resume", "pause", "snapshot $D/snap2.state $D/snap2.mem"},
}

func TestRecordedSequences(t *testing.T) {
	for name, steps := range sequences {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t)
			vmm := &fakeVMM{}
			s := NewServer(Config{VMM: vmm})
			defer s.Close()
			replay(t, fx, s, steps)
			var want []string
			for _, c := range wantCalls[name] {
				want = append(want, fx.expand(c))
			}
			if got := vmm.callList(); !reflect.DeepEqual(got, want) {
				t.Errorf("VMM calls %q, want %q", got, want)
			}
		})
	}
}

// The firectl sequence's configuration reached the VMM: the root drive
// first, the interface with its MAC.
func TestStartConfig(t *testing.T) {
	fx := newFixture(t)
	vmm := &fakeVMM{}
	s := NewServer(Config{VMM: vmm})
	defer s.Close()
	replay(t, fx, s, sequences["firectl"])
	c := vmm.started
	if c == nil || c.Machine.MemSizeMiB != 512 || c.BootSource.KernelImagePath != fx.dir+"/vmlinux" {
		t.Fatalf("started with %+v", c)
	}
	if len(c.Drives) != 2 || c.Drives[0].DriveID != "root_drive" || !c.Drives[1].IsReadOnly {
		t.Errorf("drives %+v, want root_drive first, then 1 read-only", c.Drives)
	}
	if len(c.Nets) != 1 || c.Nets[0].HostDevName != "tap0" || c.Nets[0].GuestMAC != "06:00:AC:10:00:02" {
		t.Errorf("interfaces %+v", c.Nets)
	}
}

// A root drive put after another goes first; putting an ID again
// replaces it in place.
func TestDriveOrder(t *testing.T) {
	fx := newFixture(t)
	s := NewServer(Config{VMM: &fakeVMM{}})
	defer s.Close()
	replay(t, fx, s, []step{
		{"PUT", "/drives/a", `{"drive_id":"a","path_on_host":"$D/data.img","is_root_device":false}`, 204, ""},
		{"PUT", "/drives/b", `{"drive_id":"b","path_on_host":"$D/stub0","is_root_device":false}`, 204, ""},
		{"PUT", "/drives/r", `{"drive_id":"r","path_on_host":"$D/rootfs.ext4","is_root_device":true}`, 204, ""},
		{"PUT", "/drives/a", `{"drive_id":"a","path_on_host":"$D/stub1","is_root_device":false}`, 204, ""},
		{"PUT", "/drives/x", `{"drive_id":"x","path_on_host":"$D/stub1","is_root_device":true}`, 400, "A root block device already exists!"},
	})
	var ids []string
	for _, d := range s.cfg.Drives {
		ids = append(ids, d.DriveID+"="+filepath.Base(d.PathOnHost))
	}
	if want := []string{"r=rootfs.ext4", "a=stub1", "b=stub0"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("drives %v, want %v", ids, want)
	}
}

// snapshotOf is everything a refused request must leave as it was.
func snapshotOf(t *testing.T, s *Server, vmm *fakeVMM) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/", "/machine-config", "/vm/config"} {
		status, out := s.Handle(context.Background(), "GET", p, nil)
		fmt.Fprintf(&b, "%d %s\n", status, out)
	}
	fmt.Fprintf(&b, "%q %v %v", vmm.callList(), s.logger != nil, s.metrics != nil)
	return b.String()
}

func TestBadRequests(t *testing.T) {
	big := `{"kernel_image_path":"` + strings.Repeat("a", MaxPayload) + `"}`
	before := []step{ // refused before the start
		{"PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":256,"cpu_weight":3}`, 400, "unknown field \"cpu_weight\""},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux","kernel_args":"x"}`, 400, "unknown field \"kernel_args\""},
		{"PUT", "/drives/root", `{"drive_id":"rootfs","path_on_host":"$D/rootfs.ext4","is_root_device":true}`, 400, "The id from the path does not match the id from the body!"},
		{"PUT", "/drives/ro-ot", `{"drive_id":"ro-ot","path_on_host":"$D/rootfs.ext4","is_root_device":true}`, 400, "alphanumeric characters and underscores"},
		{"PUT", "/drives/", `{"drive_id":"","path_on_host":"$D/rootfs.ext4","is_root_device":true}`, 400, "The ID cannot be empty."},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth1","host_dev_name":"tap0"}`, 400, "does not match"},
		{"PUT", "/boot-source", ``, 400, "Empty PUT request."},
		{"PATCH", "/machine-config", ` `, 400, "Empty PATCH request."},
		{"PATCH", "/machine-config", `{}`, 400, "Empty PATCH request."},
		{"GET", "/", `{"a":1}`, 400, "GET request cannot have a body."},
		{"PUT", "/boot-source", big, 400, "more than the 51200 bytes allowed"},
		{"PUT", "/boot-source", `{"kernel_image_path":"/etc/passwd"}`, 400, "outside the folders this govmm may use"},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/../../etc/passwd"}`, 400, "outside the folders"},
		{"PUT", "/drives/d", `{"drive_id":"d","path_on_host":"$D/link","is_root_device":false}`, 400, "outside the folders"},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/missing"}`, 400, "no such file"},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D"}`, 400, "not a regular file"},
		{"PUT", "/boot-source", `{"boot_args":"x"}`, 400, "missing field `kernel_image_path`"},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"} {}`, 400, "deserializing"},
		{"PUT", "/boot-source", `[1]`, 400, "deserializing"},
		{"PUT", "/machine-config", `{"vcpu_count":0,"mem_size_mib":256}`, 400, "The vCPU number is invalid"},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"smt":true}`, 400, "simultaneous multithreading"},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"cpu_template":"T2"}`, 400, "CPU templates are not implemented"},
		{"PUT", "/drives/d", `{"drive_id":"d","path_on_host":"$D/data.img","is_root_device":false,"rate_limiter":{"bandwidth":{"size":1,"refill_time":1}}}`, 400, "rate limiters are not implemented"},
		{"PUT", "/drives/d", `{"drive_id":"d","path_on_host":"$D/data.img","is_root_device":false,"cache_type":"Fast"}`, 400, "give Unsafe or Writeback"},
		{"PUT", "/network-interfaces/n", `{"iface_id":"n","host_dev_name":"tap0","guest_mac":"01:00:00:00:00:01"}`, 400, "unicast"},
		{"PUT", "/network-interfaces/n", `{"iface_id":"n","host_dev_name":"tap0","allow_mmds_requests":true}`, 400, "MMDS"},
		{"PUT", "/mmds", `{"latest":{}}`, 400, "MMDS (the microVM metadata service) is not implemented in govmm"},
		{"GET", "/mmds", ``, 400, "MMDS"},
		{"PUT", "/vsock", `{"guest_cid":3,"uds_path":"/tmp/v.sock"}`, 400, "vsock is not implemented"},
		{"PUT", "/balloon", `{"amount_mib":1,"deflate_on_oom":true}`, 400, "balloon"},
		{"DELETE", "/drives/a", ``, 400, "Invalid request method and/or path: DELETE /drives/a."},
		{"GET", "/nothing", ``, 400, "Invalid request method and/or path"},
		{"PUT", "/actions", `{"action_type":"Reboot"}`, 400, "give InstanceStart"},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 400, "Cannot start microvm without kernel configuration."},
		{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 400, msgPreBoot},
		{"PUT", "/actions", `{"action_type":"FlushMetrics"}`, 400, msgPreBoot},
		{"PATCH", "/vm", `{"state":"Paused"}`, 400, msgPreBoot},
		{"PATCH", "/drives/stub0", `{"drive_id":"stub0","path_on_host":"$D/data.img"}`, 400, msgPreBoot},
		{"PUT", "/snapshot/create", `{"snapshot_path":"$D/s","mem_file_path":"$D/m"}`, 400, msgPreBoot},
		{"PUT", "/snapshot/load", `{"snapshot_path":"$D/snap.state","mem_backend":{"backend_type":"Uffd","backend_path":"$D/uffd.sock"}}`, 400, "Uffd is not implemented"},
		{"PUT", "/snapshot/load", `{"snapshot_path":"$D/snap.state","mem_file_path":"$D/snap.mem","mem_backend":{"backend_type":"File","backend_path":"$D/snap.mem"}}`, 400, "not both"},
		{"PUT", "/logger", `{"log_path":"$D/log.fifo","level":"Loud"}`, 400, "give Error"},
		{"PUT", "/metrics", `{"metrics_path":"/var/metrics"}`, 400, "outside the folders"},
	}
	after := []step{ // refused once it runs
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`, 400, msgPostBoot},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"}`, 400, msgPostBoot},
		{"PUT", "/drives/d", `{"drive_id":"d","path_on_host":"$D/data.img","is_root_device":false}`, 400, msgPostBoot},
		{"PUT", "/network-interfaces/n", `{"iface_id":"n","host_dev_name":"tap1"}`, 400, msgPostBoot},
		{"PUT", "/logger", `{"log_path":"$D/log.fifo"}`, 400, msgPostBoot},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 400, msgPostBoot},
		{"PUT", "/snapshot/load", `{"snapshot_path":"$D/snap.state","mem_file_path":"$D/snap.mem"}`, 400, msgPostBoot},
		{"PUT", "/snapshot/create", `{"snapshot_path":"$D/s","mem_file_path":"$D/m"}`, 400, "pause it first"},
		{"PATCH", "/drives/nope", `{"drive_id":"nope","path_on_host":"$D/data.img"}`, 400, "no drive \"nope\""},
		{"PATCH", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"/etc/passwd"}`, 400, "outside the folders"},
		{"PATCH", "/drives/root_drive", `{"drive_id":"other","path_on_host":"$D/data.img"}`, 400, msgIDMismatch},
		{"PATCH", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"$D"}`, 400, "not a regular file or a block device"},
		{"PATCH", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"$D/missing.img"}`, 400, "no such file"},
		{"PATCH", "/drives/root_drive", `{"drive_id":"root_drive"}`, 400, "changes nothing"},
		{"PATCH", "/vm", `{"state":"Stopped"}`, 400, "give Paused or Resumed"},
		{"PUT", "/actions", `{"action_type":"FlushMetrics"}`, 400, "PUT /metrics first"},
	}
	run := func(t *testing.T, setup []step, bad []step) {
		fx := newFixture(t)
		if err := os.Symlink("/etc/passwd", filepath.Join(fx.dir, "link")); err != nil {
			t.Fatal(err)
		}
		vmm := &fakeVMM{}
		s := NewServer(Config{VMM: vmm, AllowedDirs: []string{fx.dir}})
		defer s.Close()
		replay(t, fx, s, setup)
		for _, st := range bad {
			was := snapshotOf(t, s, vmm)
			replay(t, fx, s, []step{st})
			if now := snapshotOf(t, s, vmm); now != was {
				t.Errorf("%v: refused, but changed the microVM:\n%s\nto\n%s", st, was, now)
			}
		}
	}
	t.Run("before start", func(t *testing.T) { run(t, nil, before) })
	t.Run("after start", func(t *testing.T) {
		run(t, []step{
			{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"}`, 204, ""},
			{"PUT", "/drives/root_drive", `{"drive_id":"root_drive","path_on_host":"$D/rootfs.ext4","is_root_device":true}`, 204, ""},
			{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 204, ""},
		}, after)
	})
	t.Run("load after configuring", func(t *testing.T) {
		run(t, []step{{"PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":64}`, 204, ""}}, []step{
			{"PUT", "/snapshot/load", `{"snapshot_path":"$D/snap.state","mem_file_path":"$D/snap.mem"}`, 400, "not allowed after configuring boot-specific resources"},
		})
	})
}

// Once the guest has ended, SendCtrlAltDel fails.
func TestCtrlAltDelAfterEnd(t *testing.T) {
	fx := newFixture(t)
	vmm := &fakeVMM{}
	s := NewServer(Config{VMM: vmm})
	defer s.Close()
	replay(t, fx, s, []step{
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 204, ""},
	})
	vmm.ended = true
	replay(t, fx, s, []step{{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 400, "the guest has ended"}})
}

// The logger and metrics FIFOs: opened with no reader without blocking,
// and each FlushMetrics is one JSON line.
func TestLoggerAndMetricsFIFOs(t *testing.T) {
	fx := newFixture(t)
	s := NewServer(Config{VMM: &fakeVMM{}})
	defer s.Close()
	start := time.Now()
	replay(t, fx, s, []step{
		{"PUT", "/logger", `{"log_path":"$D/log.fifo","level":"Info","show_level":true}`, 204, ""},
		{"PUT", "/metrics", `{"metrics_path":"$D/metrics.fifo"}`, 204, ""},
	})
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("opening FIFOs no one reads took %v", d)
	}
	// A reader comes now, as the SDK's does after the PUTs.
	f, err := os.OpenFile(filepath.Join(fx.dir, "metrics.fifo"), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	replay(t, fx, s, []step{
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"FlushMetrics"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"FlushMetrics"}`, 204, ""},
	})
	r := bufio.NewReader(f)
	for i := range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m metricsLine
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.UTCTimestampMs == 0 || m.State != Running {
			t.Fatalf("metrics line %d %q: %+v, %v", i, line, m, err)
		}
	}
	lf, err := os.OpenFile(filepath.Join(fx.dir, "log.fifo"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	buf := make([]byte, 1<<16)
	n, _ := lf.Read(buf)
	if !strings.Contains(string(buf[:n]), "[anonymous-instance:INFO] Running Firecracker v1.4.1") {
		t.Errorf("log %q lacks the first line", buf[:n])
	}
}

// A FIFO whose reader never reads: the logger drops lines, the API goes
// on answering at once.
func TestFullLogFIFODoesNotBlock(t *testing.T) {
	fx := newFixture(t)
	s := NewServer(Config{VMM: &fakeVMM{}})
	defer s.Close()
	replay(t, fx, s, []step{{"PUT", "/logger", `{"log_path":"$D/log.fifo","level":"Debug"}`, 204, ""}})
	start := time.Now()
	for range 3000 { // about 100 bytes a line: more than a 64 KiB pipe holds
		s.Handle(context.Background(), "PUT", "/boot-source", []byte(fx.expand(`{"kernel_image_path":"$D/vmlinux"}`)))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("3000 requests took %v with a full log FIFO", d)
	}
	s.mu.Lock()
	missed := s.stats.LoggerMissed
	s.mu.Unlock()
	if missed == 0 {
		t.Errorf("no log line was dropped, though the FIFO filled")
	}
}

// Over the socket: status lines, bodies and headers as Firecracker's.
func TestHTTP(t *testing.T) {
	fx := newFixture(t)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{VMM: &fakeVMM{}, ID: "vm_7"})
	go s.Serve(ln)
	defer s.Close()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	do := func(method, path, body string) (*http.Response, string, time.Duration) {
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(fx.expand(body)))
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b), time.Since(t0)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
		ctype              string
	}{
		{"GET", "/", "", 200, `{"app_name":"Firecracker","id":"vm_7","state":"Not started","started":false,"vmm_version":"1.4.1"}`, "application/json"},
		{"GET", "/version", "", 200, `{"firecracker_version":"1.4.1"}`, "application/json"},
		{"PUT", "/boot-source", `{"kernel_image_path":"$D/vmlinux"}`, 204, "", ""},
		{"PUT", "/drives/x", `{"drive_id":"y","path_on_host":"$D/data.img","is_root_device":false}`, 400, `{"fault_message":"The id from the path does not match the id from the body!"}`, "application/json"},
		{"PUT", "/boot-source", strings.Repeat(" ", MaxPayload+10) + "{}", 400, "", "application/json"},
	} {
		resp, body, d := do(tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status || (tc.want != "" && body != tc.want) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, got, tc.ctype)
		}
		if d > 250*time.Millisecond {
			t.Errorf("%s %s took %v: the SDK allows 500 ms (250 for PUT /drives)", tc.method, tc.path, d)
		}
	}
}

// kataConfig is the configuration file Kata Containers writes
// (fcInitConfiguration and StartVM in src/runtime/virtcontainers/fc.go):
// the machine with ht_enabled, its kernel parameters, the guest image as
// a read-only drive "rootfs" that is not the root device, a pool of empty
// placeholder drives drive_0 ... drive_7, the logger and metrics on
// FIFOs, an interface with empty rate limiters, and the agent's vsock.
const kataConfig = `{
	"boot-source": {"kernel_image_path": "$D/vmlinux", "boot_args": "root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 pci=off reboot=k panic=1 iommu=off net.ifnames=0 random.trust_cpu=on acpi=off console=ttyS0"},
	"drives": [
		{"drive_id": "rootfs", "path_on_host": "$D/rootfs.ext4", "is_root_device": false, "is_read_only": true},
		{"drive_id": "drive_0", "path_on_host": "$D/drive_0", "is_root_device": false, "is_read_only": false}
	],
	"machine-config": {"vcpu_count": 1, "mem_size_mib": 2048, "ht_enabled": false},
	"logger": {"log_path": "$D/log.fifo", "level": "Error"},
	"metrics": {"metrics_path": "$D/metrics.fifo"},
	"network-interfaces": [{"iface_id": "eth0", "guest_mac": "02:42:ac:11:00:02", "host_dev_name": "tap0_kata", "rx_rate_limiter": {}, "tx_rate_limiter": {}}]
	VSOCK
}`

// TestKataSequence: Kata starts the VMM with --config-file and polls GET
// / until it says started, then hot-plugs a block device by patching a
// placeholder drive. Its agent's vsock is refused: govmm has none.
func TestKataSequence(t *testing.T) {
	fx := newFixture(t)
	withVsock := strings.Replace(kataConfig, "VSOCK", `, "vsock": {"guest_cid": 3, "uds_path": "$D/kata.hvsock", "vsock_id": "root"}`, 1)
	if _, err := ParseConfigFile([]byte(fx.expand(withVsock))); err == nil || !strings.Contains(err.Error(), "vsock is not implemented") {
		t.Errorf("Kata's file with its vsock: %v, want refused", err)
	}
	cf, err := ParseConfigFile([]byte(fx.expand(strings.Replace(kataConfig, "VSOCK", "", 1))))
	if err != nil || len(cf.Ignored) > 0 {
		t.Fatalf("Kata's file: %v, ignored %q", err, cf.Ignored)
	}
	vmm := &fakeVMM{}
	s := NewServer(Config{VMM: vmm})
	defer s.Close()
	if err := s.Apply(context.Background(), cf.Requests); err != nil {
		t.Fatal(err)
	}
	replay(t, fx, s, []step{
		{"GET", "/", "", 200, runningInfo},
		{"PATCH", "/drives/drive_0", `{"drive_id":"drive_0","path_on_host":"$D/data.img"}`, 204, ""},
		{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`, 204, ""},
	})
	c := vmm.started
	if c == nil || len(c.Drives) != 2 || c.Drives[0].DriveID != "rootfs" || c.Machine.MemSizeMiB != 2048 || len(c.Nets) != 1 {
		t.Errorf("started with %+v", c)
	}
	if want := []string{"start", "update-drive drive_0 " + fx.dir + "/data.img", "ctrl-alt-del"}; !reflect.DeepEqual(vmm.callList(), want) {
		t.Errorf("VMM calls %q, want %q", vmm.callList(), want)
	}
}
