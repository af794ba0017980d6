package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/machine/machinetest"
)

// The test guest's lines: its banner, once per boot, and mode=powerbutton
// waiting for the ACPI power button or Ctrl-Alt-Del.
const (
	guestBanner  = "testguest: boot=linux mode=powerbutton"
	guestWaiting = "powerbutton: waiting for the power button"
)

// rebootRun is one govmm run, in this process, of the test guest in
// mode=powerbutton, whose first VM the test can type Ctrl-Alt-Del on:
// the guest then resets through the i8042, as Linux does with reboot=k.
// The run goes as runVM's does from the VM on: runPowered (with SIGTERM
// pressing the power button of whichever VM runs, through signalContext)
// and endStatus. Not through run: its VM, in a child process, has no
// keyboard a test can type on (neither the control API nor the console
// has Ctrl-Alt-Del).
type rebootRun struct {
	m      *machine.Machine // the first VM
	serial *roundsOut       // every VM's console
	stderr *syncWriter
	done   chan struct{}
	status int
	err    error
}

// startReboot starts govmm with the flags (-reboot, -shutdown-timeout)
// on the test guest and waits until the guest waits for its power button.
func startReboot(t *testing.T, flags ...string) *rebootRun {
	t.Helper()
	kvmtest.Require(t)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &rebootRun{serial: newRoundsOut(), stderr: machinetest.NewConsole(), done: make(chan struct{})}
	args := append([]string{"-kernel", g.BzImage, "-mem", "64M", "-kvm", kvmtest.Path(), "-cache", t.TempDir(),
		"-append", "mode=powerbutton"}, flags...)
	o, err := parseFlags(args, r.stderr)
	if err != nil {
		t.Fatal(err)
	}
	kernel, unmap, err := readKernel(o.kernel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := machine.Config{KVMPath: o.kvmPath, Kernel: kernel, Cmdline: o.cmdline, MemSize: o.mem, CPUs: o.cpus,
		Boot: o.boot, CacheDir: o.cacheDir, Hide: o.hide, Devices: o.devices, PIT: o.pit, Log: r.stderr,
		Start: time.Now(), SerialOut: r.serial, NoDebugDevices: !o.debugDevices}
	ctx, stop := signalContext(context.Background())
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancel(); stop() })
	if r.m, err = machine.New(cfg); err != nil {
		unmap()
		t.Fatal(err)
	}
	go func() {
		defer close(r.done)
		defer unmap() // the kernel, mapped, until a restart can no longer read it
		defer r.m.Close()
		res, err := runPowered(ctx, r.m, cfg, o, r.stderr)
		if err != nil {
			r.status, r.err = 1, err
			return
		}
		r.status, r.err = endStatus(ctx, res, o)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	r.waitSerial(t, guestWaiting, 1)
	return r
}

// waitSerial waits until the console shows s n times.
func (r *rebootRun) waitSerial(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for strings.Count(r.serial.String(), s) < n {
		select {
		case <-r.serial.More():
		case <-r.done:
			if strings.Count(r.serial.String(), s) >= n {
				return
			}
			t.Fatalf("govmm ended (status %d, %v) before the console showed %q %d times\nconsole:\n%s\nstderr:\n%s", r.status, r.err, s, n, r.serial.String(), r.stderr.String())
		case <-timeout:
			t.Fatalf("the console did not show %q %d times within a minute\nconsole:\n%s\nstderr:\n%s", s, n, r.serial.String(), r.stderr.String())
		}
	}
}

// end waits for the run to end and checks its status, the error's
// cause, and how many times the guest booted.
func (r *rebootRun) end(t *testing.T, status int, boots int) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatalf("govmm did not end within a minute\nconsole:\n%s\nstderr:\n%s", r.serial.String(), r.stderr.String())
	}
	if r.status != status {
		t.Errorf("exit status %d (%v), want %d\nconsole:\n%s\nstderr:\n%s", r.status, r.err, status, r.serial.String(), r.stderr.String())
	}
	if n := strings.Count(r.serial.String(), guestBanner); n != boots {
		t.Errorf("the guest booted %d times, want %d\nconsole:\n%s", n, boots, r.serial.String())
	}
	if n := strings.Count(r.stderr.String(), "booting it again in a new VM"); n != boots-1 {
		t.Errorf("govmm restarted the guest %d times, want %d\nstderr:\n%s", n, boots-1, r.stderr.String())
	}
}

// TestRebootExit: with -reboot exit (the default) a guest's reset ends
// govmm with status 123 (statusReboot, README "Exit status"), after one
// boot.
func TestRebootExit(t *testing.T) {
	for _, flags := range [][]string{nil, {"-reboot", "exit"}} {
		t.Run(strings.Join(append([]string{"flags"}, flags...), " "), func(t *testing.T) {
			r := startReboot(t, flags...)
			if err := r.m.CtrlAltDel(); err != nil {
				t.Fatal(err)
			}
			r.end(t, statusReboot, 1)
			if r.err != nil {
				t.Errorf("error %v, want none", r.err)
			}
			if !strings.Contains(r.serial.String(), "ctrl-alt-del pressed: reset") {
				t.Errorf("the guest did not reset through the i8042:\n%s", r.serial.String())
			}
		})
	}
}

// TestRebootRestart: with -reboot restart the guest's reset (Ctrl-Alt-Del
// typed on the first VM's keyboard; the guest pulses the i8042's reset
// line) boots the guest again in a new VM, which prints its banner and
// waits for its power button again. The new VM's RAM is fresh, so the
// boots are counted by their banners. SIGTERM then presses the new VM's
// power button: the guest powers off and govmm exits 0; with
// -shutdown-timeout 0 SIGTERM stops the VM at once and govmm exits 143.
func TestRebootRestart(t *testing.T) {
	for _, tt := range []struct {
		timeout string
		status  int
	}{
		{"10s", 0},
		{"0", 143},
	} {
		t.Run("shutdown-timeout="+tt.timeout, func(t *testing.T) {
			r := startReboot(t, "-reboot", "restart", "-shutdown-timeout", tt.timeout)
			if err := r.m.CtrlAltDel(); err != nil {
				t.Fatal(err)
			}
			r.waitSerial(t, guestWaiting, 2)
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			r.end(t, tt.status, 2)
			pressed := strings.Contains(r.serial.String(), "power button pressed")
			if tt.status == 0 {
				if r.err != nil || !pressed {
					t.Errorf("SIGTERM: error %v, power button pressed in the new VM: %v; want no error, pressed\nconsole:\n%s", r.err, pressed, r.serial.String())
				}
				return
			}
			var sig *stopSignal
			if !errors.As(r.err, &sig) || pressed {
				t.Errorf("SIGTERM with -shutdown-timeout 0: error %v, power button pressed: %v; want SIGTERM's stopSignal, not pressed", r.err, pressed)
			}
		})
	}
}
