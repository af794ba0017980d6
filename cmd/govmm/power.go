package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// What govmm does when the guest resets (-reboot).
type rebootMode int

const (
	rebootExit    rebootMode = iota // end govmm with statusReboot
	rebootRestart                   // boot the guest again in a new VM
)

// statusReboot is govmm's exit status when the guest resets (a reboot,
// a triple-fault-free panic with panic=-1) and -reboot is exit: neither 0,
// which a power off gives, nor 1, an error; next to govmm exec's own 124
// and 125.
const statusReboot = 123

// defaultShutdownTimeout is how long govmm waits, after SIGTERM pressed
// the guest's power button, for the guest to power off.
const defaultShutdownTimeout = 30 * time.Second

// powerFlagValues are the raw words of the power flags.
type powerFlagValues struct{ reboot string }

// addPowerFlags adds the flags about the guest's power: -reboot,
// -shutdown-timeout and -dump-acpi. govmm exec has none of them: its
// guest ends with the command's status, and SIGTERM stops it at once.
func addPowerFlags(fs *pflag.FlagSet, o *options, p *powerFlagValues) {
	fs.StringVar(&p.reboot, "reboot", "exit", "when the guest resets: exit (govmm exits with status 123) or restart (boot it again, in a new VM built from the same flags)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM, press the guest's ACPI power button and wait this long for it to power off before stopping it (0: stop at once)")
	fs.StringVar(&o.dumpACPI, "dump-acpi", "", "write the ACPI tables this VM would get to the folder DIR, one SIGNATURE.dat file each (iasl -d reads them), and exit; -kernel is not needed")
}

// apply checks the power flags' words.
func (p *powerFlagValues) apply(o *options) error {
	switch p.reboot {
	case "exit":
		o.reboot = rebootExit
	case "restart":
		o.reboot = rebootRestart
	default:
		return fmt.Errorf("-reboot %q: give exit or restart", p.reboot)
	}
	if o.shutdownTimeout < 0 {
		return fmt.Errorf("-shutdown-timeout %v: give a duration like 30s, or 0 to stop at once", o.shutdownTimeout)
	}
	return nil
}

// dumpACPI writes the tables a VM of o would get to o.dumpACPI.
func dumpACPI(o *options, stdout io.Writer) (int, error) {
	tables, err := machine.ACPITables(machine.Config{CPUs: o.cpus, MemSize: o.mem})
	if err != nil {
		return 1, fmt.Errorf("-dump-acpi: %w", err)
	}
	if err := os.MkdirAll(o.dumpACPI, 0o755); err != nil {
		return 1, fmt.Errorf("-dump-acpi: %w", err)
	}
	for _, t := range tables {
		path := filepath.Join(o.dumpACPI, t.Name()+".dat")
		if err := os.WriteFile(path, t.Data, 0o644); err != nil {
			return 1, fmt.Errorf("-dump-acpi: %w", err)
		}
		fmt.Fprintf(stdout, "%s\t%d bytes at guest address %#x\n", path, len(t.Data), t.Addr)
	}
	return 0, nil
}

// runPowered runs m until the guest ends, with SIGTERM pressing its power
// button (see signalContext). When the guest resets and -reboot is
// restart, it builds a new VM from cfg and runs that: a reset starts the
// machine afresh, and a new VM is the one way to get every part of it
// (the in-kernel PIC, I/O APIC, PIT and LAPICs, the vCPUs' registers, the
// devices, RAM) back to its power-on state without a reset path to keep
// in step with each of them; it costs the few milliseconds machine.New
// takes. The caller closes m; runPowered closes the VMs it made.
func runPowered(ctx context.Context, m *machine.Machine, cfg machine.Config, o *options, stderr io.Writer) (machine.Result, error) {
	cur := m
	for {
		stop := onTerminate(ctx, cur.PowerButton, o.shutdownTimeout)
		res, err := cur.Run(ctx)
		stop()
		if err != nil || res.Reason != vcpu.StopReset || o.reboot != rebootRestart || ctx.Err() != nil {
			if cur != m {
				err = errors.Join(err, cur.Close())
			}
			return res, err
		}
		if cur != m {
			if err := cur.Close(); err != nil {
				return res, err
			}
		}
		fmt.Fprintln(stderr, "govmm: the guest reset; booting it again in a new VM (-reboot restart)")
		cfg.Start = time.Now()
		if cur, err = machine.New(cfg); err != nil {
			return res, fmt.Errorf("restarting the guest after its reset: %w", err)
		}
	}
}

// endStatus turns how the guest ended into govmm's exit status, for a
// run that ended without an error.
func endStatus(ctx context.Context, res machine.Result, o *options) (int, error) {
	switch res.Reason {
	case vcpu.StopCanceled:
		if ctx.Err() == nil {
			return 0, nil // the user quit with Ctrl-A x
		}
		var sig *stopSignal
		if errors.As(context.Cause(ctx), &sig) {
			return sig.status(), sig
		}
		return 130, errors.New("stopped by a signal")
	case vcpu.StopReset:
		if o.reboot == rebootExit {
			return statusReboot, nil
		}
	}
	return res.Status, nil
}
