package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// runVM builds the machine from the options and runs it to the end.
func runVM(ctx context.Context, o *options, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	start := time.Now()
	if o.verbose && !mainStart.IsZero() {
		// Before machine.New's steps (its "start-up:" line): main to here.
		fmt.Fprintf(stderr, "govmm: before the clock: flags=%.3fms\n", float64(start.Sub(mainStart))/float64(time.Millisecond))
	}
	kernel, unmapKernel, err := readKernel(o.kernel) // none for -restore, -incoming
	if err != nil {
		return 1, err
	}
	defer unmapKernel()
	var initrd []byte
	if o.initrd != "" {
		// Mapped, not read: the loader copies it from the page cache into
		// guest RAM once (machine.New reads it under boot.Guard).
		var unmap func() error
		if initrd, unmap, err = boot.MapFile(o.initrd); err != nil {
			return 1, fmt.Errorf("reading the initrd: %w", err)
		}
		defer unmap()
	}
	cfg := machine.Config{
		KVMPath:  o.kvmPath,
		Kernel:   kernel,
		Initrd:   initrd,
		Cmdline:  o.cmdline,
		MemSize:  o.mem,
		CPUs:     o.cpus,
		Boot:     o.boot,
		CacheDir: o.cacheDir,
		Hide:     o.hide,
		Devices:  o.devices,
		PIT:      o.pit,
		Log:      stderr,
		Verbose:  o.verbose,
		Start:    start,

		NoDebugDevices: !o.debugDevices,
	}
	switch {
	case o.serial == "stdio":
		cfg.SerialOut, cfg.SerialIn = stdout, stdin
	case o.serial == "none":
		cfg.SerialOut = io.Discard
	default:
		f, err := os.Create(strings.TrimPrefix(o.serial, "file:"))
		if err != nil {
			return 1, fmt.Errorf("-serial: %w", err)
		}
		defer f.Close()
		cfg.SerialOut = f
	}
	if o.inspect.step {
		cfg.SerialIn = nil // stdin has the stepper's commands
	}
	mob, err := prepareMobility(o, &cfg, stderr) // -api, -restore, -incoming: before Landlock
	if err != nil {
		return 1, err
	}
	defer mob.close()
	in, err := newInspector(o, &cfg) // opens -trace's file: before Landlock
	if err != nil {
		return 1, err
	}
	if err := confineFiles(o, stderr); err != nil {
		return 1, errors.Join(err, in.finish(nil, stderr))
	}
	cfg.Confine = mob.confine(confineCalls(o, stderr))
	if err := mob.receive(ctx, &cfg); err != nil { // -incoming: the guest arrives
		return 1, errors.Join(err, in.finish(nil, stderr))
	}
	prepare := time.Since(start)
	m, err := machine.New(cfg)
	if err != nil {
		mob.failed(err)
		return 1, errors.Join(err, in.finish(nil, stderr))
	}
	defer closeMachine(m, o.verbose, stderr)
	if err := mob.started(m, &cfg, in.stats); err != nil {
		return 1, errors.Join(err, in.finish(nil, stderr))
	}
	in.start(m, stderr)
	runCtx, stopRun := context.WithCancel(ctx) // the stepper's quit, gdb's k
	defer stopRun()
	fe, err := startFrontEnd(o, m, cfg, stopRun, in, stdin, stdout, stderr)
	if err != nil {
		return 1, errors.Join(err, in.finish(nil, stderr))
	}
	if o.verbose {
		fmt.Fprintf(stderr, "govmm: start-up: prepare=%.3fms %s\n", float64(prepare)/float64(time.Millisecond), machine.FormatPhases(m.Startup()))
	}
	res, err := runPowered(runCtx, m, cfg, o, stderr)
	ferr := fe.finish(ctx, res, err)
	if ierr := errors.Join(in.finish(err, stderr), ferr); ierr != nil && err == nil {
		return 1, ierr
	}
	if to := mob.migratedTo(); to != "" && err == nil {
		return 0, nil // the guest runs on at to: said when it left
	}
	if err != nil {
		var ge *vcpu.GuestError
		if errors.As(err, &ge) {
			fmt.Fprint(stderr, ge.Registers())
		}
		return 1, err
	}
	if o.verbose {
		fmt.Fprintf(stderr, "govmm: guest ended (%v, status %d) after %v\n", res.Reason, res.Status, time.Since(start).Round(time.Microsecond))
	}
	return endStatus(ctx, res, o)
}

// closeMachine releases the VM; with -v it says how long that took (KVM
// tears the VM down here: its in-kernel PIT alone can take milliseconds).
func closeMachine(m *machine.Machine, verbose bool, stderr io.Writer) {
	t := time.Now()
	err := m.Close()
	if verbose {
		fmt.Fprintf(stderr, "govmm: close=%.3fms\n", float64(time.Since(t))/float64(time.Millisecond))
	}
	if err != nil {
		fmt.Fprintf(stderr, "govmm: warning: releasing the VM: %v\n", err)
	}
}
