package vcpu

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// Hardware is what the run loop needs from a KVM vCPU. *kvm.VCPU implements
// it; tests use a fake that plays back exits.
type Hardware interface {
	Run() (kvm.Exit, error)
	SetImmediateExit(on bool)
	GetRegs(*kvm.Regs) error
	SetRegs(*kvm.Regs) error
	GetSregs(*kvm.Sregs) error
	GetVCPUEvents(*kvm.VCPUEvents) error
	SetVCPUEvents(*kvm.VCPUEvents) error
	GetXSAVE(*kvm.XSAVE) error // the fixups of ldmxcsr and stmxcsr
	SetXSAVE(*kvm.XSAVE) error
}

// Observer sees every exit before it is handled, on the vCPU's own thread.
// It may block (a stepper waits for the user there). This is the one place
// every exit passes; with no observer set it costs one atomic load.
type Observer interface {
	Exit(vcpu int, e kvm.Exit)
}

// Config is what a vCPU is built from.
type Config struct {
	ID   int
	HW   Hardware
	IO   *devices.Bus   // port I/O
	MMIO *devices.Bus   // memory-mapped I/O
	Mem  *memory.Memory // guest RAM, to read instruction bytes for reports
	// CPUID is the table KVM reports for the vCPU (KVM_GET_CPUID2): what
	// the guest's CPUID instruction answers. nil when not known.
	CPUID []kvm.CPUIDEntry
}

// Requests from other goroutines, as bits in VCPU.requests.
const (
	reqStop uint32 = 1 << iota
	reqPause
)

// VCPU is one virtual CPU and its run loop.
type VCPU struct {
	Config
	Fixups Fixups // emulation failures the VMM handled itself

	state    atomic.Int32
	tid      atomic.Int32 // OS thread running Run, 0 when none
	requests atomic.Uint32
	observer atomic.Pointer[Observer]

	stopOnce sync.Once
	stopCh   chan struct{} // closed by Stop
	pausedCh chan struct{} // the loop acknowledges a pause here
	resumeCh chan struct{}
}

// New returns a vCPU in the Created state.
func New(c Config) *VCPU {
	return &VCPU{
		Config:   c,
		stopCh:   make(chan struct{}),
		pausedCh: make(chan struct{}, 1),
		resumeCh: make(chan struct{}, 1),
	}
}

// RunState returns where the vCPU is in its life.
func (v *VCPU) RunState() RunState { return RunState(v.state.Load()) }

// SetObserver installs o (nil removes it). Safe while running.
func (v *VCPU) SetObserver(o Observer) {
	if o == nil {
		v.observer.Store(nil)
		return
	}
	v.observer.Store(&o)
}

// Run runs the guest on the calling goroutine, locked to its OS thread,
// until the guest stops, an exit cannot be handled, Stop is called or ctx
// is done. It returns why the guest stopped; an error is a *GuestError when
// the guest did something the VMM cannot handle.
func (v *VCPU) Run(ctx context.Context) (StopReason, error) {
	if !v.state.CompareAndSwap(int32(Created), int32(Running)) {
		return StopUnknown, fmt.Errorf("vcpu %d: Run called in state %v, want %v", v.ID, v.RunState(), Created)
	}
	defer v.state.Store(int32(Stopped))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	v.tid.Store(int32(unix.Gettid()))
	defer v.tid.Store(0)
	defer context.AfterFunc(ctx, v.Stop)()

	for {
		if v.requests.Load() != 0 && v.serveRequests() {
			return StopCanceled, nil
		}
		exit, err := v.HW.Run()
		if err != nil {
			return StopUnknown, fmt.Errorf("vcpu %d: KVM_RUN failed (the VMM or host is at fault, not the guest): %w", v.ID, err)
		}
		if o := v.observer.Load(); o != nil {
			(*o).Exit(v.ID, exit)
		}
		reason, stop, err := v.handle(exit)
		if err != nil {
			return StopUnknown, err
		}
		if stop {
			return reason, nil
		}
	}
}

// serveRequests handles Stop and Pause between two KVM_RUNs. It reports
// whether the loop must end.
func (v *VCPU) serveRequests() bool {
	if v.requests.Load()&reqStop != 0 {
		return true
	}
	if v.requests.And(^reqPause)&reqPause == 0 {
		return false
	}
	v.state.Store(int32(Paused))
	v.pausedCh <- struct{}{}
	select {
	case <-v.resumeCh:
		v.state.Store(int32(Running))
		return false
	case <-v.stopCh:
		return true
	}
}

// Stop asks the loop to end; Run then returns StopCanceled. It returns at
// once and may be called from any goroutine, any number of times.
func (v *VCPU) Stop() {
	v.stopOnce.Do(func() { close(v.stopCh) })
	v.requests.Or(reqStop)
	v.kick()
}

// Pause asks the loop to pause and waits until it has, or until ctx is done
// or the vCPU stops. While paused, the vCPU's registers may be read.
func (v *VCPU) Pause(ctx context.Context) error {
	if s := v.RunState(); s != Running {
		return fmt.Errorf("vcpu %d: cannot pause in state %v", v.ID, s)
	}
	v.requests.Or(reqPause)
	v.kick()
	select {
	case <-v.pausedCh:
		return nil
	case <-v.stopCh:
		return fmt.Errorf("vcpu %d: stopped before it paused", v.ID)
	case <-ctx.Done():
		return fmt.Errorf("vcpu %d: pause: %w", v.ID, ctx.Err())
	}
}

// Resume lets a paused vCPU run again.
func (v *VCPU) Resume() error {
	if s := v.RunState(); s != Paused {
		return fmt.Errorf("vcpu %d: cannot resume in state %v", v.ID, s)
	}
	v.resumeCh <- struct{}{}
	return nil
}

// kick makes a KVM_RUN in progress return at once: immediate_exit covers a
// kick that lands before the thread enters the guest, the signal one that
// lands while it is inside. SIGURG is the Go runtime's own preemption
// signal, which it already tolerates arriving at any time.
func (v *VCPU) kick() {
	v.HW.SetImmediateExit(true)
	if tid := v.tid.Load(); tid != 0 {
		// The pid, tid and signal are valid by construction, so tgkill can
		// only fail with ESRCH: the thread has already left Run, which is
		// what the kick wanted.
		_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
	}

}
