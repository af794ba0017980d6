package kvm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// VCPU is a KVM vCPU fd and its mapped struct kvm_run page. Run, the
// register accessors and Close belong to the one goroutine that runs the
// vCPU (locked to its OS thread); only ID and SetImmediateExit may be
// called from other goroutines.
type VCPU struct {
	id  int
	f   *os.File
	run []byte // the mmap'd struct kvm_run, KVM_GET_VCPU_MMAP_SIZE bytes

	// mu keeps Close from unmapping the page while SetImmediateExit writes it.
	mu sync.Mutex
	// immediateExit is the aligned 32-bit word of the run page that holds
	// the immediate_exit byte; nil after Close.
	immediateExit *uint32

	exits exits // the values Run returns, reused on every exit
}

// ID returns the id the vCPU was created with.
func (v *VCPU) ID() int { return v.id }

// Run enters the guest until it exits to the VMM (KVM_RUN) and returns the
// decoded exit. The exit points into storage the VCPU reuses: it, and the
// Data slices in it, are valid only until the next Run. For an IOExit that
// is an IN or an MMIOExit that is a read, fill Data before calling Run
// again: KVM completes the guest's instruction with it.
//
// When the call is interrupted by a signal or by SetImmediateExit, Run
// returns an *InterruptedExit and a nil error; so it does when KVM_RUN
// returns EAGAIN, which KVM does once an application processor that was
// waiting for INIT and SIPI (KVM_MP_STATE_UNINITIALIZED) has received
// them: the caller runs it again. An exit reason this package
// does not know comes back as an *UnknownExit, which is also an error.
func (v *VCPU) Run() (Exit, error) {
	if _, err := ioctl(v.f, kvmRun, 0); err != nil {
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			return &v.exits.interrupted, nil
		}
		return nil, fmt.Errorf("KVM_RUN on vCPU %d: %w", v.id, err)
	}
	e, err := decodeExit(v.run, &v.exits)
	if err != nil {
		return nil, fmt.Errorf("KVM_RUN on vCPU %d: %w", v.id, err)
	}
	return e, nil
}

// immediateExitBit is the immediate_exit byte's lowest bit within the
// little-endian word that holds it.
const immediateExitBit = 1 << (8 * runImmediateExit)

// SetImmediateExit sets or clears kvm_run.immediate_exit (KVM_CAP_IMMEDIATE_EXIT).
// While it is set, KVM_RUN returns at once with EINTR, so a goroutine that
// wants the vCPU out of the guest sets it and then signals the vCPU's
// thread; the run loop clears it before running again. It is safe to call
// from any goroutine, and does nothing after Close.
func (v *VCPU) SetImmediateExit(on bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.immediateExit == nil {
		return
	}
	// The word also holds request_interrupt_window and padding, which only
	// user space writes: the atomic OR/AND leaves them as they are.
	if on {
		atomic.OrUint32(v.immediateExit, immediateExitBit)
	} else {
		atomic.AndUint32(v.immediateExit, ^uint32(0xff<<(8*runImmediateExit)))
	}
}

// Close unmaps the kvm_run page and closes the vCPU fd. It must not run
// while Run does.
func (v *VCPU) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var errs []error
	if v.run != nil {
		v.immediateExit = nil
		if err := unix.Munmap(v.run); err != nil {
			errs = append(errs, fmt.Errorf("munmap kvm_run of vCPU %d: %w", v.id, err))
		}
		v.run = nil
	}
	if err := v.f.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
