package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	firecracker "github.com/firecracker-microvm/firecracker-go-sdk"
	"github.com/firecracker-microvm/firecracker-go-sdk/client/models"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/agentproto"
	"github.com/govmm/govmm/images/imagesenv"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// binEnv names the govmm binary to run; without it the test builds one
// (a static build, so that its seccomp filter can be installed).
const binEnv = "GOVMM_FIRECRACKER_BIN"

// firecrackerBin is a symlink named firecracker to govmm: govmm run under
// that name is Firecracker.
func firecrackerBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(binEnv)
	dir := t.TempDir()
	if bin == "" {
		bin = filepath.Join(dir, "govmm")
		// In govmm's own module, the repository's root.
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/govmm")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building govmm (or set %s to a govmm binary): %v\n%s", binEnv, err, out)
		}
	}
	link := filepath.Join(dir, "firecracker")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// console collects the guest's serial output (govmm's standard output).
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func newConsole() *console { return &console{more: make(chan struct{}, 1)} }

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return c.buf.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until the console says s.
func (c *console) waitFor(t *testing.T, s string, limit time.Duration, m *firecracker.Machine, stderr *console) {
	t.Helper()
	deadline := time.After(limit)
	exited := make(chan error, 1)
	go func() { exited <- m.Wait(context.Background()) }()
	for !strings.Contains(c.String(), s) {
		select {
		case <-c.more:
		case err := <-exited:
			if strings.Contains(c.String(), s) {
				return
			}
			t.Fatalf("govmm exited (%v) before the guest said %q\nconsole:\n%s\nstderr:\n%s", err, s, c.String(), stderr.String())
		case <-deadline:
			t.Fatalf("the guest did not say %q in %v\nconsole:\n%s\nstderr:\n%s", s, limit, c.String(), stderr.String())
		}
	}
}

// vm is one govmm process started through the SDK.
type vm struct {
	m               *firecracker.Machine
	console, stderr *console
}

// startVM starts govmm through the SDK's process runner (its
// VMCommandBuilder) and Machine.Start, which makes the SDK's requests.
func startVM(t *testing.T, ctx context.Context, bin string, cfg firecracker.Config, opts ...firecracker.Opt) *vm {
	t.Helper()
	v := &vm{console: newConsole(), stderr: newConsole()}
	b := firecracker.VMCommandBuilder{}
	if cfg.VMID != "" {
		b = b.AddArgs("--id", cfg.VMID)
	}
	cmd := b.
		WithBin(bin).
		WithSocketPath(cfg.SocketPath).
		WithStdout(v.console).
		WithStderr(v.stderr).
		Build(ctx)
	log := logrus.New()
	log.SetOutput(io.Discard)
	if testing.Verbose() {
		log.SetOutput(os.Stderr)
		log.SetLevel(logrus.DebugLevel)
	}
	opts = append([]firecracker.Opt{firecracker.WithProcessRunner(cmd), firecracker.WithLogger(logrus.NewEntry(log))}, opts...)
	m, err := firecracker.NewMachine(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("NewMachine: %v", err)
	}
	v.m = m
	t0 := time.Now()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Machine.Start: %v\nstderr:\n%s", err, v.stderr.String())
	}
	t.Logf("Machine.Start (launch, socket, configuration, InstanceStart or LoadSnapshot) took %v", time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() {
		// SIGTERM, then wait for the process to end: a TAP in use
		// cannot be removed.
		m.StopVMM()
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Wait(wctx)
	})
	return v
}

// shutdown sends SendCtrlAltDel and waits for govmm to exit 0.
func (v *vm) shutdown(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := v.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown (SendCtrlAltDel): %v\nstderr:\n%s", err, v.stderr.String())
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := v.m.Wait(wctx); err != nil {
		t.Fatalf("Wait: %v (govmm should exit 0 once the guest resets or powers off)\nconsole:\n%s\nstderr:\n%s", err, v.console.String(), v.stderr.String())
	}
	if err := v.m.Shutdown(ctx); err == nil {
		t.Errorf("SendCtrlAltDel after govmm exited succeeded")
	}
}

// makeTAP creates a persistent TAP device and removes it when the test
// ends.
func makeTAP(t *testing.T, name string) {
	t.Helper()
	set := func(persist int) error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("TUNSETIFF %s: %w", name, err)
		}
		return unix.IoctlSetInt(fd, unix.TUNSETPERSIST, persist)
	}
	if err := set(1); err != nil {
		t.Fatalf("making TAP %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := set(0); err != nil {
			t.Errorf("removing TAP %s: %v", name, err)
		}
	})
}

// drive writes a small disk image whose first bytes are text.
func drive(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "disk.img")
	b := make([]byte, 1<<20)
	copy(b, text)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// socketPath is a short path: a Unix socket's path is at most 107 bytes.
func socketPath(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "govmm-sdk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// describe shows an InstanceInfo's fields, not their pointers.
func describe(i models.InstanceInfo) string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return fmt.Sprintf("{app_name %q, id %q, state %q, vmm_version %q}", s(i.AppName), s(i.ID), s(i.State), s(i.VmmVersion))
}

const guestMAC = "06:00:ac:10:00:02"

// TestSDKTestGuest drives govmm with the SDK on the project's test guest
// (mode=powerbutton: it waits for the ACPI power button or Ctrl-Alt-Del
// on the i8042's keyboard, then powers off or resets), which runs
// directly on every KVM host, PVM included: a drive and a network
// interface on a TAP, pause and resume, a snapshot loaded in a new process
// through the SDK's WithSnapshot, SendCtrlAltDel on each, and Wait for
// each process to exit.
func TestSDKTestGuest(t *testing.T) {
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	bin := firecrackerBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	tap := "fcsdk" + fmt.Sprint(os.Getpid()%10000)
	makeTAP(t, tap)
	cfg := firecracker.Config{
		SocketPath:      socketPath(t, "fc.sock"),
		KernelImagePath: g.BzImage,
		KernelArgs:      "console=ttyS0 reboot=k panic=1 pci=off mode=powerbutton",
		Drives:          firecracker.NewDrivesBuilder(drive(t, dir, "govmm-sdk-drive")).Build(),
		NetworkInterfaces: firecracker.NetworkInterfaces{{
			StaticConfiguration: &firecracker.StaticNetworkConfiguration{HostDevName: tap, MacAddress: guestMAC},
		}},
		MachineCfg: models.MachineConfiguration{VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(64), Smt: firecracker.Bool(false)},
		VMID:       "sdk_test_guest",
	}
	v := startVM(t, ctx, bin, cfg)
	v.console.waitFor(t, "powerbutton: waiting for the power button", time.Minute, v.m, v.stderr)
	info, err := v.m.DescribeInstanceInfo(ctx)
	if err != nil || *info.State != models.InstanceInfoStateRunning || *info.ID != "sdk_test_guest" || *info.AppName != "Firecracker" {
		t.Fatalf("DescribeInstanceInfo = %v, %v", describe(info), err)
	}
	version, err := v.m.GetFirecrackerVersion(ctx)
	if err != nil || version != "1.4.1" {
		t.Errorf("GetFirecrackerVersion = %q, %v", version, err)
	}
	if err := v.m.PauseVM(ctx); err != nil {
		t.Fatalf("PauseVM: %v", err)
	}
	if info, err := v.m.DescribeInstanceInfo(ctx); err != nil || *info.State != models.InstanceInfoStatePaused {
		t.Fatalf("after PauseVM: %v, %v", describe(info), err)
	}
	state, mem := filepath.Join(dir, "vm.state"), filepath.Join(dir, "vm.mem")
	snapErr := v.m.CreateSnapshot(ctx, mem, state)
	if err := v.m.ResumeVM(ctx); err != nil {
		t.Fatalf("ResumeVM: %v", err)
	}
	v.shutdown(t, ctx)
	if !strings.Contains(v.console.String(), "ctrl-alt-del pressed") {
		t.Errorf("the guest did not see Ctrl-Alt-Del:\n%s", v.console.String())
	}
	if snapErr != nil {
		t.Fatalf("CreateSnapshot: %v\nstderr:\n%s", snapErr, v.stderr.String())
	}

	// The snapshot in a new process, resumed by the load.
	cfg2 := firecracker.Config{SocketPath: socketPath(t, "fc2.sock"), VMID: "sdk_restored"}
	v2 := startVM(t, ctx, bin, cfg2, firecracker.WithSnapshot(mem, state, func(c *firecracker.SnapshotConfig) { c.ResumeVM = true }))
	if info, err := v2.m.DescribeInstanceInfo(ctx); err != nil || *info.State != models.InstanceInfoStateRunning {
		t.Fatalf("after loading the snapshot: %v, %v", describe(info), err)
	}
	v2.shutdown(t, ctx)
	if out := v2.console.String(); !strings.Contains(out, "ctrl-alt-del pressed") || strings.Contains(out, "testguest:") {
		t.Errorf("the restored guest should go on waiting and see Ctrl-Alt-Del, not boot again:\n%s", out)
	}
}

// TestSDKLinuxGuest drives govmm with the SDK on the default Linux guest
// (Debian's kernel, the u-root initrd with govmm's agent): a drive and a
// network interface on a TAP; the agent runs a command that reads the
// drive and shows the interface's MAC; pause and resume; SendCtrlAltDel
// types Ctrl-Alt-Del on the i8042's keyboard, the guest reboots, and
// govmm exits 0 at the reset, as Firecracker does.
func TestSDKLinuxGuest(t *testing.T) {
	kvmtest.RequireLinux(t)
	images, err := imagesenv.Load(kvmtest.CacheDir())
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := firecrackerBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	disk := drive(t, dir, "govmm-sdk-disk")
	tap := "fclnx" + fmt.Sprint(os.Getpid()%10000)
	makeTAP(t, tap)
	// The command reads the drive and the interface's MAC, says which
	// keyboard Linux found, then waits. SendCtrlAltDel types Ctrl-Alt-Del
	// on the i8042's keyboard; Linux's console keyboard handler reboots
	// on it, as a Firecracker guest ends: Linux resets through the i8042
	// (reboot=k) and the VMM exits 0.
	script := `head -c 15 /dev/vda; echo; cat /sys/class/net/eth0/address
grep -h '^N: Name=' /proc/bus/input/devices
echo SDK-CMD-DONE
sleep 600`
	args, err := agentproto.Append("console=ttyS0 reboot=k panic=-1 pci=off", agentproto.Config{Cmd: script})
	if err != nil {
		t.Fatal(err)
	}
	cfg := firecracker.Config{
		SocketPath:      socketPath(t, "fc.sock"),
		KernelImagePath: images.Kernel,
		InitrdPath:      images.Initrd,
		KernelArgs:      args,
		// The root drive, /dev/vda (the initrd's init ignores root=).
		Drives: firecracker.NewDrivesBuilder(disk).WithRootDrive(disk, firecracker.WithReadOnly(true)).Build(),
		NetworkInterfaces: firecracker.NetworkInterfaces{{
			StaticConfiguration: &firecracker.StaticNetworkConfiguration{HostDevName: tap, MacAddress: guestMAC},
		}},
		MachineCfg: models.MachineConfiguration{VcpuCount: firecracker.Int64(1), MemSizeMib: firecracker.Int64(512)},
		VMID:       "sdk_linux",
	}
	v := startVM(t, ctx, bin, cfg)
	v.console.waitFor(t, "SDK-CMD-DONE", 3*time.Minute, v.m, v.stderr)
	out := v.console.String()
	for _, want := range []string{"govmm-sdk-disk", guestMAC} {
		if !strings.Contains(out, want) {
			t.Errorf("the command's output lacks %q:\n%s", want, out)
		}
	}
	if err := v.m.PauseVM(ctx); err != nil {
		t.Fatalf("PauseVM: %v", err)
	}
	if err := v.m.ResumeVM(ctx); err != nil {
		t.Fatalf("ResumeVM: %v", err)
	}
	v.shutdown(t, ctx)
	if out := v.console.String(); !strings.Contains(out, "AT Translated Set 2 keyboard") || !strings.Contains(out, "reboot: Restarting system") {
		t.Errorf("the guest should find the i8042's keyboard and restart on Ctrl-Alt-Del:\n%s", out)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("ran out of time")
	}
}
