package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/firecracker"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/sandbox"
	"github.com/govmm/govmm/snapshot"
	"github.com/govmm/govmm/vcpu"
	"github.com/govmm/govmm/virtio/blk"
)

// fcVMM runs the guest for the Firecracker API with package machine.
type fcVMM struct {
	o              *fcOptions
	stdout, stderr io.Writer
	start          time.Time

	mu      sync.Mutex
	m       *machine.Machine
	drives  []firecracker.Drive // in device order
	snap    *snapshot.Snapshotter
	running bool // Run was called (a loaded snapshot waits for Resume)
	ended   bool
	runCtx  context.Context
	cancel  context.CancelFunc
	// exited gets how the process ends once the guest has.
	exited chan fcExit
}

// fcExit is the process's exit status and error.
type fcExit struct {
	status int
	err    error
}

func newFCVMM(o *fcOptions, stdout, stderr io.Writer) *fcVMM {
	v := &fcVMM{o: o, stdout: stdout, stderr: stderr, start: time.Now(), exited: make(chan fcExit, 1)}
	v.runCtx, v.cancel = context.WithCancel(context.Background())
	return v
}

// defaultBootArgs is the command line when boot_args is empty:
// Firecracker's default would turn the serial console off.
const defaultBootArgs = "console=ttyS0 reboot=k panic=-1"

// bootArgs is the kernel command line for c: boot_args without pci=off
// (govmm's devices are on PCI; Firecracker's on virtio-mmio), and the root
// device as Firecracker adds it.
func bootArgs(c firecracker.VMConfig) (args string, dropped []string) {
	src := c.BootSource.BootArgs
	if strings.TrimSpace(src) == "" {
		src = defaultBootArgs
	}
	var words []string
	for _, w := range strings.Fields(src) {
		if w == "pci=off" {
			dropped = append(dropped, w)
			continue
		}
		words = append(words, w)
	}
	for _, d := range c.Drives {
		if !d.IsRootDevice {
			continue
		}
		root := "root=/dev/vda"
		if d.PartUUID != "" {
			root = "root=PARTUUID=" + d.PartUUID
		}
		mode := "rw"
		if d.IsReadOnly {
			mode = "ro"
		}
		words = append(words, root, mode)
	}
	return strings.Join(words, " "), dropped
}

// optionValue doubles commas, as govmm's device words quote them.
func optionValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// deviceWords are the machine's device words for c's drives and network
// interfaces.
func deviceWords(c firecracker.VMConfig) []machine.Device {
	var devs []machine.Device
	for _, d := range c.Drives {
		w := "virtio-blk,file=" + optionValue(d.PathOnHost)
		if d.IsReadOnly {
			w += ",readonly=on"
		}
		if d.CacheType == "Writeback" {
			w += ",cache=writeback"
		} else {
			w += ",cache=unsafe" // Firecracker's default: flushes are not passed on
		}
		id := d.DriveID
		if len(id) > blk.IDBytes {
			id = id[:blk.IDBytes]
		}
		devs = append(devs, machine.Device(w+",serial="+id))
	}
	for _, n := range c.Nets {
		w := "virtio-net,tap=" + n.HostDevName
		if n.GuestMAC != "" {
			w += ",mac=" + n.GuestMAC
		}
		devs = append(devs, machine.Device(w))
	}
	return devs
}

// baseConfig is what every machine of this process shares.
func (v *fcVMM) baseConfig() machine.Config {
	return machine.Config{
		KVMPath:   v.o.kvmPath,
		CacheDir:  v.o.cacheDir,
		SerialOut: v.stdout, // Firecracker's guest console is its standard output
		Log:       v.stderr,
		Verbose:   v.o.verbose,
		Start:     v.start,
		Confine:   v.confine,
	}
}

// confine, before the guest runs: with --allowed-dir, Landlock limits
// govmm's file access to those folders (the guest's files are open by
// then; what requests name later must be in them anyway), where the kernel
// has Landlock; then the seccomp filter, with the rules the API needs
// (its socket, snapshot files).
func (v *fcVMM) confine() error {
	if len(v.o.allowedDirs) > 0 {
		if errConfinedInTest != nil {
			return errConfinedInTest
		}
		abi, err := sandbox.Restrict(sandbox.Files{Read: []string{"/proc/cpuinfo"}, Dirs: v.o.allowedDirs}, true)
		if err != nil {
			return err
		}
		if v.o.verbose {
			fmt.Fprintf(v.stderr, "govmm: landlock (ABI %d): files confined to %s\n", abi, strings.Join(v.o.allowedDirs, ", "))
		}
	}
	mode := v.o.seccompMode()
	if mode == sandbox.SeccompOff {
		return nil
	}
	if errConfinedInTest != nil {
		return errConfinedInTest
	}
	return sandbox.Install(mode, sandbox.MobilityRules()...)
}

func (v *fcVMM) Start(ctx context.Context, c firecracker.VMConfig) error {
	kernel, err := os.ReadFile(c.BootSource.KernelImagePath)
	if err != nil {
		return fmt.Errorf("reading the kernel: %w", err)
	}
	cfg := v.baseConfig()
	cfg.Kernel = kernel
	if c.BootSource.InitrdPath != "" {
		if cfg.Initrd, err = os.ReadFile(c.BootSource.InitrdPath); err != nil {
			return fmt.Errorf("reading the initrd: %w", err)
		}
	}
	var dropped []string
	cfg.Cmdline, dropped = bootArgs(c)
	if len(dropped) > 0 {
		fmt.Fprintf(v.stderr, "govmm: boot_args: left out %s (govmm's devices are on PCI)\n", strings.Join(dropped, " "))
	}
	cfg.MemSize = uint64(c.Machine.MemSizeMiB) << 20
	cfg.CPUs = c.Machine.VCPUCount
	cfg.Devices = deviceWords(c)
	m, err := machine.New(cfg)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.m, v.drives = m, append([]firecracker.Drive(nil), c.Drives...)
	v.mu.Unlock()
	v.run()
	return nil
}

// run runs the machine until the guest ends, then reports how the
// process should end.
func (v *fcVMM) run() {
	v.mu.Lock()
	m := v.m
	v.running = true
	v.snap = snapshot.NewSnapshotter(m, nil)
	v.mu.Unlock()
	go func() {
		res, err := m.Run(v.runCtx)
		v.mu.Lock()
		v.ended = true
		v.mu.Unlock()
		var e fcExit
		switch {
		case err != nil:
			var ge *vcpu.GuestError
			if errors.As(err, &ge) {
				fmt.Fprint(v.stderr, ge.Registers())
			}
			e = fcExit{1, err}
		case res.DebugExit:
			e = fcExit{res.Status, nil}
		default: // a reset or a power off ends Firecracker with 0
			if v.o.verbose {
				fmt.Fprintf(v.stderr, "govmm: guest ended (%v) after %v\n", res.Reason, time.Since(v.start).Round(time.Microsecond))
			}
		}
		v.exited <- e
	}()
}

func (v *fcVMM) Load(ctx context.Context, l firecracker.SnapshotLoad) (firecracker.MachineConfig, error) {
	data, err := os.ReadFile(l.SnapshotPath)
	if err != nil {
		return firecracker.MachineConfig{}, err
	}
	f, _, err := snapshot.Decode(data)
	if err != nil {
		return firecracker.MachineConfig{}, fmt.Errorf("%s: %w", l.SnapshotPath, err)
	}
	if f.Memory.Diff != nil {
		return firecracker.MachineConfig{}, fmt.Errorf("%s is a diff snapshot; load its base with govmm -restore", l.SnapshotPath)
	}
	mf, err := os.Open(l.MemPath())
	if err != nil {
		return firecracker.MachineConfig{}, err
	}
	mem, err := memory.MapFile(mf, f.Memory.Size)
	if err != nil {
		return firecracker.MachineConfig{}, fmt.Errorf("%s: %w", l.MemPath(), err)
	}
	cfg := v.baseConfig()
	cfg.Restore = &machine.Restore{State: f.Machine, Memory: mem}
	cfg.ApplySaved(f.Machine.Config)
	m, err := machine.New(cfg)
	if err != nil {
		return firecracker.MachineConfig{}, err
	}
	v.mu.Lock()
	v.m = m
	v.mu.Unlock()
	return firecracker.MachineConfig{VCPUCount: cfg.CPUs, MemSizeMiB: int(cfg.MemSize >> 20)}, nil
}

// machine is the machine, whether it was run, or an error saying why
// there is none.
func (v *fcVMM) machine() (*machine.Machine, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.m == nil:
		return nil, false, errors.New("the microVM has not started")
	case v.ended:
		return nil, false, errors.New("the guest has ended; this process is exiting")
	}
	return v.m, v.running, nil
}

func (v *fcVMM) Pause(ctx context.Context) error {
	m, running, err := v.machine()
	if err != nil {
		return err
	}
	if !running {
		return nil // a loaded snapshot not yet resumed stays still
	}
	if err := m.Pause(ctx); err != nil && !errors.Is(err, machine.ErrPaused) {
		return err
	}
	return nil
}

func (v *fcVMM) Resume() error {
	m, running, err := v.machine()
	if err != nil {
		return err
	}
	if !running {
		v.run() // a loaded snapshot runs from here
		return nil
	}
	if err := m.Resume(); err != nil && !errors.Is(err, machine.ErrNotPaused) {
		return err
	}
	return nil
}

// CtrlAltDel types Ctrl-Alt-Del on the i8042's keyboard, as Firecracker
// does: Linux reboots on it, through the i8042's reset line with reboot=k,
// and govmm ends the run there.
func (v *fcVMM) CtrlAltDel() error {
	m, _, err := v.machine()
	if err != nil {
		return err
	}
	return m.CtrlAltDel()
}

// UpdateDrive is PATCH /drives/{id} at run time: the drive's disk gets
// the file at path (or re-reads its own file's size), and the guest's
// driver a configuration change notification (machine.ReplaceDisk). The
// drives are the machine's first devices, in the order deviceWords gave
// them; the drive keeps its is_read_only.
func (v *fcVMM) UpdateDrive(ctx context.Context, id, path string) error {
	m, _, err := v.machine()
	if err != nil {
		return err
	}
	v.mu.Lock()
	i := slices.IndexFunc(v.drives, func(d firecracker.Drive) bool { return d.DriveID == id })
	var readOnly bool
	if i >= 0 {
		readOnly = v.drives[i].IsReadOnly
	}
	v.mu.Unlock()
	if i < 0 {
		return fmt.Errorf("no drive %q in this microVM", id)
	}
	if err := m.ReplaceDisk(i, path, readOnly); err != nil {
		return err
	}
	v.mu.Lock()
	v.drives[i].PathOnHost = path
	v.mu.Unlock()
	return nil
}

func (v *fcVMM) Snapshot(ctx context.Context, c firecracker.SnapshotCreate) error {
	v.mu.Lock()
	s, running := v.snap, v.running
	v.mu.Unlock()
	if !running {
		return errors.New("a loaded snapshot must run (PATCH /vm Resumed) before it is snapshotted again")
	}
	// govmm writes a folder (state file, memory file); the two files
	// are moved to the paths asked for.
	tmp, err := os.MkdirTemp(filepath.Dir(c.SnapshotPath), ".govmm-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := s.Save(ctx, tmp, snapshot.Options{}); err != nil {
		return err
	}
	f, err := snapshot.ReadState(tmp)
	if err != nil {
		return err
	}
	if err := moveFile(filepath.Join(tmp, f.Memory.Name), c.MemFilePath); err != nil {
		return fmt.Errorf("the memory file: %w", err)
	}
	if err := moveFile(filepath.Join(tmp, snapshot.StateName), c.SnapshotPath); err != nil {
		return fmt.Errorf("the state file: %w", err)
	}
	return nil
}

// moveFile renames src to dst, or copies it where a rename cannot move
// it (EXDEV: another file system, or Landlock, which refuses to move a
// file to another folder without its refer right). The copy keeps the
// holes of a sparse file (the memory file's never-written pages) and uses
// only calls the seccomp filter allows: lseek, read, write, ftruncate,
// fsync.
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := copySparse(out, in); err != nil {
		return errors.Join(fmt.Errorf("copying %s to %s: %w", src, dst, err), out.Close())
	}
	return errors.Join(out.Close(), os.Remove(src))
}

// copySparse copies in's data runs (SEEK_DATA, SEEK_HOLE) to the same
// offsets in out, sets out's length to in's, and syncs out.
func copySparse(out, in *os.File) error {
	st, err := in.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		data, err := in.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole from here on
		}
		if err != nil {
			return err
		}
		hole, err := in.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		// Plain reads and writes: io.Copy on two files would use
		// copy_file_range, which the filter does not allow.
		if _, err := io.CopyBuffer(struct{ io.Writer }{out}, io.LimitReader(struct{ io.Reader }{in}, hole-data), buf); err != nil {
			return err
		}
		off = hole
	}
	if err := out.Truncate(size); err != nil {
		return err
	}
	return out.Sync()
}

func (v *fcVMM) Metrics() any {
	v.mu.Lock()
	m := v.m
	v.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Metrics()
}

// stop ends the guest at once (SIGTERM, SIGINT).
func (v *fcVMM) stop() {
	v.mu.Lock()
	m, running := v.m, v.running
	v.mu.Unlock()
	if m != nil && running {
		m.Stop()
		<-v.exited
	}
}

// close releases the machine; the guest has ended or never ran.
func (v *fcVMM) close() {
	v.cancel()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m != nil {
		if err := v.m.Close(); err != nil {
			fmt.Fprintf(v.stderr, "govmm: warning: releasing the VM: %v\n", err)
		}
		v.m = nil
	}
}
