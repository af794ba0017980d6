package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/govmm/govmm/machine"
	"github.com/govmm/govmm/vcpu"
)

// runVM builds the machine from the options and runs it to the end.
func runVM(ctx context.Context, o *options, stdin *os.File, stdout, stderr io.Writer) (int, error) {
	start := time.Now()
	kernel, err := os.ReadFile(o.kernel)
	if err != nil {
		return 1, fmt.Errorf("reading the kernel: %w", err)
	}
	var initrd []byte
	if o.initrd != "" {
		if initrd, err = os.ReadFile(o.initrd); err != nil {
			return 1, fmt.Errorf("reading the initrd: %w", err)
		}
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
	if err := confineFiles(o, stderr); err != nil {
		return 1, err
	}
	cfg.Confine = confineCalls(o, stderr)
	m, err := machine.New(cfg)
	if err != nil {
		return 1, err
	}
	defer m.Close()
	res, err := m.Run(ctx)
	if err != nil {
		var ge *vcpu.GuestError
		if errors.As(err, &ge) {
			fmt.Fprint(stderr, ge.Registers())
		}
		return 1, err
	}
	if o.verbose {
		fmt.Fprintf(stderr, "govmm: guest ended (%v, status %d) after %v\n", res.Reason, res.Status, time.Since(start).Round(time.Millisecond))
	}
	if res.Reason == vcpu.StopCanceled {
		if ctx.Err() != nil {
			return 130, errors.New("stopped by a signal")
		}
		return 0, nil // the user quit with Ctrl-A x
	}
	return res.Status, nil
}
