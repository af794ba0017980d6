package machine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/govmm/govmm/console"
	"github.com/govmm/govmm/vcpu"
)

// Result is how a VM ended.
type Result struct {
	// Reason is why the guest stopped; vcpu.StopUnknown (the zero value)
	// when Run returns an error.
	Reason vcpu.StopReason
	// Status is the exit status the guest asked for: its byte written to
	// the debug-exit device, 0 for a power off or reset.
	Status int
	// DebugExit says the guest ended the VM by writing Status to the
	// debug-exit device, rather than by a reset or power off that carry
	// no status.
	DebugExit bool
}

// powerOff is the debug-exit device's callback: the guest ends the VM with
// a status.
func (m *Machine) powerOff(status int) { m.finish(vcpu.StopPowerOff, status, true) }

// reset is the i8042's reset line. govmm ends the VM instead of rebooting.
func (m *Machine) reset() { m.finish(vcpu.StopReset, 0, false) }

// finish records the first request to end the VM and stops every vCPU.
func (m *Machine) finish(reason vcpu.StopReason, status int, debugExit bool) {
	m.endOnce.Do(func() { m.end = ending{set: true, reason: reason, status: status, debugExit: debugExit} })
	for _, v := range m.vcpus {
		v.Stop()
	}
}

// Run runs the guest until it powers off, resets, fails, or ctx is done.
// A guest that stops because ctx was canceled gives Reason StopCanceled.
func (m *Machine) Run(ctx context.Context) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if m.cfg.SerialIn != nil {
		con, err := console.Start(ctx, console.Config{
			In:     m.cfg.SerialIn,
			Sink:   m.plat.serial.Enqueue,
			Room:   m.plat.serial.Room(),
			Out:    m.log,
			OnQuit: cancel,
		})
		if err != nil {
			return Result{}, err
		}
		defer con.Close()
	}
	type outcome struct {
		id     int
		reason vcpu.StopReason
		err    error
	}
	done := make(chan outcome, len(m.vcpus))
	if m.cfg.Confine != nil {
		if err := m.cfg.Confine(); err != nil {
			return Result{}, err
		}
	}
	m.startRestored() // a restored guest's devices go on with it (devstate.go)
	if m.cfg.Verbose {
		fmt.Fprintf(m.log, "govmm: starting %d vCPU(s) %v after start (%s host)\n", len(m.vcpus), time.Since(m.cfg.Start).Round(time.Microsecond), m.host)
	}
	for i, v := range m.vcpus {
		go func() {
			r, err := v.Run(ctx)
			done <- outcome{i, r, err}
		}()
	}
	first := <-done
	for _, v := range m.vcpus {
		v.Stop()
	}
	var errs []error
	if first.err != nil {
		errs = append(errs, first.err)
	}
	for range len(m.vcpus) - 1 {
		if o := <-done; o.err != nil {
			errs = append(errs, o.err)
		}
	}
	m.plat.finish(m.log) // every byte of serial output out before Run returns
	m.report()
	if m.end.set {
		return Result{Reason: m.end.reason, Status: m.end.status, DebugExit: m.end.debugExit}, nil
	}
	if len(errs) > 0 {
		return Result{}, errors.Join(errs...)
	}
	return Result{Reason: first.reason}, nil
}

// report writes the exit statistics to the log: fixups whenever there
// were any (they are worth knowing about), the rest in verbose mode.
func (m *Machine) report() {
	for _, v := range m.vcpus {
		if m.cfg.Verbose || v.Fixups.Total() > 0 {
			fmt.Fprintf(m.log, "govmm: vcpu %d emulation fixups: %v\n", v.ID, &v.Fixups)
		}
	}
	if m.cfg.Verbose {
		fmt.Fprintf(m.log, "govmm: unclaimed accesses: %d port, %d mmio\n", m.plat.io.Unclaimed.Load(), m.plat.mmio.Unclaimed.Load())
		m.reportDevices()
	}
}
