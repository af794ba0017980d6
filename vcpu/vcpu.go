package vcpu

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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
	// MSRs are the MSRs SaveState saves: KVM's list of those it can save
	// (KVM_GET_MSR_INDEX_LIST). nil saves SavedMSRs (snapshot.go).
	MSRs []uint32
}

// Requests from other goroutines, as bits in VCPU.requests.
const (
	reqStop uint32 = 1 << iota
	reqPause
	reqDebug // Interrupt: show the observer a Requested event
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
	exited   chan struct{} // closed when Run returns

	// mu orders Pause, Resume and the loop's answer to a pause, so that
	// each acknowledgement belongs to exactly one request. It also guards
	// every store to state after Run has started.
	mu      sync.Mutex
	pending *pauseRequest // the Pause waiting for the loop; nil when none
	resume  chan struct{} // while Paused: Resume closes it; nil otherwise

	// Observing and debugging (observe.go, debug.go), used only by the
	// loop's thread except debugCmds.
	event     Event               // the one Event observers are shown
	access    Handle              // event.State, and what Do hands out
	requested kvm.InterruptedExit // the exit of a Requested event
	debugCmds chan debugCmd       // Do and Release, served in the Debug state
	debugBase kvm.GuestDebug      // breakpoints a debugger set (Handle.SetGuestDebug)
	applied   kvm.GuestDebug      // what KVM_SET_GUEST_DEBUG last got
	debugArg  kvm.GuestDebug      // KVM_SET_GUEST_DEBUG's argument
	stepping  bool                // the next KVM_RUN runs one instruction
}

// pauseRequest is one call of Pause. The loop closes paused when it has
// paused for this request and no other.
type pauseRequest struct {
	paused chan struct{}
}

// New returns a vCPU in the Created state.
func New(c Config) *VCPU {
	v := &VCPU{
		Config:    c,
		stopCh:    make(chan struct{}),
		exited:    make(chan struct{}),
		debugCmds: make(chan debugCmd),
	}
	v.access.v = v
	v.event.State = &v.access
	return v
}

// RunState returns where the vCPU is in its life.
func (v *VCPU) RunState() RunState { return RunState(v.state.Load()) }

// SetObserver installs o (nil removes it). Safe while running: the loop
// picks it up before its next KVM_RUN.
func (v *VCPU) SetObserver(o Observer) {
	if o == nil {
		v.observer.Store(nil)
		return
	}
	v.observer.Store(&o)
}

// yieldEvery is how often the run loop yields the processor. A goroutine
// that only ever leaves Go for KVM_RUN never passes through the scheduler,
// so the P it holds keeps one schedtick: once that is 10 ms old, Go's
// sysmon takes the P away during each KVM_RUN (and, the P it gets back
// being just as stale, at every sysmon tick after, polling every 20 us),
// waking idle threads each time. On this PVM host that was ~20,000
// context switches in a 3-second run of 30,000 MMIO exits, against ~6,000
// with the yield. A yield (two thread hand-offs, the loop's thread stays
// locked to it) every few ms keeps the schedtick fresh.
const yieldEvery = 4 * time.Millisecond

// Run runs the guest on the calling goroutine, locked to its OS thread,
// until the guest stops, an exit cannot be handled, Stop is called or ctx
// is done. It returns why the guest stopped; an error is a *GuestError when
// the guest did something the VMM cannot handle, and comes with
// StopUnknown.
func (v *VCPU) Run(ctx context.Context) (StopReason, error) {
	if !v.state.CompareAndSwap(int32(Created), int32(Running)) {
		return StopUnknown, fmt.Errorf("vcpu %d: Run called in state %v, want %v", v.ID, v.RunState(), Created)
	}
	defer close(v.exited)
	defer v.setStopped()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	v.tid.Store(int32(unix.Gettid()))
	defer v.tid.Store(0)
	defer context.AfterFunc(ctx, v.Stop)()

	lastYield := time.Now()
	for {
		if time.Since(lastYield) >= yieldEvery {
			// Let the Go scheduler see this goroutine rescheduled (see
			// yieldEvery); the thread stays locked to it.
			runtime.Gosched()
			lastYield = time.Now()
		}
		if v.requests.Load() != 0 && v.serveRequests() {
			return StopCanceled, nil
		}
		if o := v.observer.Load(); o != nil {
			reason, stop, err := v.runObserved(*o)
			if err != nil {
				return StopUnknown, err
			}
			if stop {
				return reason, nil
			}
			continue
		}
		exit, err := v.HW.Run()
		if err != nil {
			return StopUnknown, fmt.Errorf("vcpu %d: KVM_RUN failed (the VMM or host is at fault, not the guest): %w", v.ID, err)
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

// setStopped makes the final transition: a Resume or Pause after it finds
// the vCPU stopped, and a Pause still waiting is answered by exited.
func (v *VCPU) setStopped() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.state.Store(int32(Stopped))
	v.pending = nil
	v.resume = nil
}

// serveRequests handles Stop, Pause and Interrupt between two KVM_RUNs.
// It reports whether the loop must end.
func (v *VCPU) serveRequests() bool {
	if v.requests.Load()&reqStop != 0 {
		return true
	}
	if v.requests.Load()&reqDebug != 0 && v.serveDebugRequest() {
		return true
	}
	if v.requests.Load()&reqPause == 0 {
		return false
	}
	resume := v.takePause()
	if resume == nil {
		return false // the request was withdrawn: its Pause gave up
	}
	select {
	case <-resume:
		return false // Resume has already made the vCPU Running
	case <-v.stopCh:
		return true
	}
}

// takePause answers the pending Pause, if one is still waiting: the vCPU
// becomes Paused and the request's own channel is closed, all under mu, so
// a Pause that gives up at the same moment sees either its request still
// pending (and withdraws it) or the loop paused for it. It returns the
// channel Resume closes, or nil when there was nothing to answer.
func (v *VCPU) takePause() chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.requests.And(^reqPause)
	req := v.pending
	if req == nil {
		return nil
	}
	v.pending = nil
	v.resume = make(chan struct{})
	v.state.Store(int32(Paused))
	close(req.paused)
	return v.resume
}

// Stop asks the loop to end; Run then returns StopCanceled. It returns at
// once and may be called from any goroutine, any number of times.
func (v *VCPU) Stop() {
	v.stopOnce.Do(func() { close(v.stopCh) })
	v.requests.Or(reqStop)
	v.kick()
}

// Pause asks the loop to pause and waits until it has, or until ctx is done
// or Run returns. While paused, the vCPU's registers may be read; Resume
// lets it go on. One Pause may wait at a time.
//
// Pause returns nil exactly when the loop paused for this call (it may
// have stopped since, if Stop came too). When ctx ends first, the request
// is withdrawn and the loop goes on running; if the loop paused at the
// very moment ctx ended, the pause stands and Pause returns nil, so a
// caller never leaves behind a pause it did not see.
func (v *VCPU) Pause(ctx context.Context) error {
	req, err := v.requestPause()
	if err != nil {
		return err
	}
	v.kick()
	select {
	case <-req.paused:
		return nil
	case <-v.exited:
	case <-ctx.Done():
	}
	withdrawn := v.withdraw(req)
	select {
	case <-req.paused:
		return nil // the loop paused for this request as ctx ended or Run returned
	default:
	}
	if withdrawn {
		return fmt.Errorf("vcpu %d: pause: %w", v.ID, ctx.Err())
	}
	return fmt.Errorf("vcpu %d: stopped before it paused", v.ID)
}

// requestPause records a new pause request for the loop to answer.
func (v *VCPU) requestPause() (*pauseRequest, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s := v.RunState(); s != Running {
		return nil, fmt.Errorf("vcpu %d: cannot pause in state %v", v.ID, s)
	}
	if v.pending != nil {
		return nil, fmt.Errorf("vcpu %d: another Pause is already waiting", v.ID)
	}
	req := &pauseRequest{paused: make(chan struct{})}
	v.pending = req
	v.requests.Or(reqPause)
	return req, nil
}

// withdraw removes req if the loop has not taken it, and reports whether
// it did.
func (v *VCPU) withdraw(req *pauseRequest) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending != req {
		return false
	}
	v.pending = nil
	v.requests.And(^reqPause)
	return true
}

// Resume lets a paused vCPU run again. The vCPU is Running when Resume
// returns; a second Resume fails rather than blocks.
func (v *VCPU) Resume() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.resume == nil {
		return fmt.Errorf("vcpu %d: cannot resume in state %v", v.ID, v.RunState())
	}
	close(v.resume)
	v.resume = nil
	v.state.Store(int32(Running))
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
