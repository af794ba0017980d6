package machine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// runLinuxUntil boots the default Linux guest with the agent running
// script, waits for its line ready, calls act, and returns how the run
// ended, the console, and the run's error.
func runLinuxUntil(t *testing.T, script, ready string, act func(m *Machine) error) (Result, string, error) {
	t.Helper()
	kernelPath, initrdPath := linuxGuest(t)
	cmdline := "console=ttyS0 reboot=k panic=-1 " + images.AgentCommandLine(script, false)
	return runUntil(t, Config{Kernel: readFile(t, kernelPath), Initrd: readFile(t, initrdPath), Cmdline: cmdline,
		MemSize: 512 << 20, CPUs: 1, Boot: BootAuto, CacheDir: kvmtest.CacheDir(), Log: testLog{t}}, ready, 4*time.Minute, act)
}

// runUntil runs a machine built from c (on the test's KVM, its console
// watched), waits for the console's line ready, calls act, and returns
// how the run ended, the console, and the run's error; it fails t when
// the guest ends before ready or the whole run takes over limit.
func runUntil(t *testing.T, c Config, ready string, limit time.Duration, act func(m *Machine) error) (Result, string, error) {
	t.Helper()
	w := newWatcher(ready)
	c.KVMPath, c.SerialOut = kvmtest.Path(), w
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := m.Run(ctx)
		done <- outcome{res, err}
	}()
	select {
	case <-w.seen(ready):
	case o := <-done:
		t.Fatalf("Run() = %+v, %v before %q:\n%s", o.res, o.err, ready, w.String())
	case <-ctx.Done():
		t.Fatalf("no %q within %v:\n%s", ready, limit, w.String())
	}
	start := time.Now()
	if err := act(m); err != nil {
		t.Fatalf("%v\n%s", err, w.String())
	}
	o := <-done
	if ctx.Err() != nil {
		t.Fatalf("the guest did not end within %v:\n%s", limit, w.String())
	}
	t.Logf("ended %v after the action", time.Since(start).Round(time.Millisecond))
	return o.res, w.String(), o.err
}

// TestLinuxCtrlAltDel boots Debian's kernel to the agent, whose command
// lists the input devices Linux found and waits; CtrlAltDel then types
// Ctrl-Alt-Del on the i8042's keyboard (which Linux found through the
// DSDT's PNP0303 device, leaving the undeclared mouse port alone), and
// Linux's console keyboard handler restarts the machine: it resets
// through the i8042 (reboot=k).
func TestLinuxCtrlAltDel(t *testing.T) {
	kvmtest.RequireLinux(t)
	script := "grep -h '^N: Name=' /proc/bus/input/devices\necho GOVMM-KBD-READY\nsleep 600\n"
	res, out, err := runLinuxUntil(t, script, "GOVMM-KBD-READY", (*Machine).CtrlAltDel)
	if err != nil || res.Reason != vcpu.StopReset {
		t.Errorf("Run() after Ctrl-Alt-Del = %+v, %v, want a reset:\n%s", res, err, out)
	}
	for _, want := range []string{"i8042: PNP: PS/2 Controller [PNP0303:KBD] at 0x60,0x64 irq 1", `N: Name="AT Translated Set 2 keyboard"`, "reboot: Restarting system"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

// TestLinuxAgentPowerButton boots Debian's kernel to the agent with a
// command that waits, and presses the ACPI power button: the agent,
// watching the button since it loaded button.ko and evdev.ko, syncs and
// powers the guest off.
func TestLinuxAgentPowerButton(t *testing.T) {
	kvmtest.RequireLinux(t)
	res, out, err := runLinuxUntil(t, "echo GOVMM-PB-READY\nsleep 600\n", "GOVMM-PB-READY", func(m *Machine) error {
		m.PowerButton()
		return nil
	})
	if err != nil || res.Reason != vcpu.StopPowerOff || res.DebugExit {
		t.Errorf("Run() after the power button = %+v, %v, want an ACPI power off:\n%s", res, err, out)
	}
	if !strings.Contains(out, "power button pressed: powering off") {
		t.Errorf("the agent did not see the button:\n%s", out)
	}
}
