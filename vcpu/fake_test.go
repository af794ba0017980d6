package vcpu

import (
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/kvm"
)

// fakeHW plays back a script of exits, then behaves like a guest spinning
// in a loop: KVM_RUN blocks until a kick sets immediate_exit.
//
// Tests hold the loop where they need it, without sleeping: entered says
// the loop is inside KVM_RUN's spin; with hold set, that KVM_RUN ignores
// kicks and returns only the exit release gives it, as a KVM_RUN that has
// not yet noticed a kick would; onKick runs on the kicking goroutine each
// time SetImmediateExit(true) is called.
type fakeHW struct {
	mu        sync.Mutex
	script    []func() kvm.Exit
	immediate bool
	kicked    chan struct{} // signalled by SetImmediateExit(true)
	regs      kvm.Regs
	sregs     kvm.Sregs
	events    kvm.VCPUEvents
	xsave     kvm.XSAVE
	runs      int
	inRun     bool // the loop is inside the spin

	entered chan struct{} // a token each time the spin begins; never blocks the loop
	hold    chan kvm.Exit // when set, the spin waits here instead of for a kick
	onKick  func()        // called, without mu, by SetImmediateExit(true)
}

func newFakeHW(script ...func() kvm.Exit) *fakeHW {
	return &fakeHW{script: script, kicked: make(chan struct{}, 1), entered: make(chan struct{}, 1)}
}

func (f *fakeHW) Run() (kvm.Exit, error) {
	f.mu.Lock()
	f.runs++
	if f.immediate {
		f.mu.Unlock()
		return &kvm.InterruptedExit{}, nil
	}
	if len(f.script) > 0 {
		next := f.script[0]
		f.script = f.script[1:]
		f.mu.Unlock()
		return next(), nil
	}
	hold := f.hold
	f.inRun = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inRun = false
		f.mu.Unlock()
	}()
	select {
	case f.entered <- struct{}{}:
	default: // a token is already there
	}
	if hold != nil {
		return <-hold, nil // kicks go unnoticed until the test releases it
	}
	<-f.kicked // the guest spins until the VMM kicks it out
	return &kvm.InterruptedExit{}, nil
}

func (f *fakeHW) SetImmediateExit(on bool) {
	f.mu.Lock()
	f.immediate = on
	hook := f.onKick
	f.mu.Unlock()
	if !on {
		return
	}
	if hook != nil {
		hook()
	}
	select {
	case f.kicked <- struct{}{}:
	default:
	}
}

// holdRuns makes every later spin ignore kicks until release.
func (f *fakeHW) holdRuns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = make(chan kvm.Exit)
}

// release ends holding: the held KVM_RUN returns e, and later ones spin
// until kicked again. The loop must be inside the held KVM_RUN.
func (f *fakeHW) release(e kvm.Exit) {
	f.mu.Lock()
	hold := f.hold
	f.hold = nil
	f.mu.Unlock()
	hold <- e
}

func (f *fakeHW) setOnKick(hook func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onKick = hook
}

func (f *fakeHW) spinning() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inRun
}

// waitEntered waits until the loop has begun a spin since the last call.
func (f *fakeHW) waitEntered(t *testing.T, why string) {
	t.Helper()
	select {
	case <-f.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("the vCPU loop did not enter KVM_RUN within 10 s: %s", why)
	}
}

func (f *fakeHW) GetRegs(r *kvm.Regs) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*r = f.regs
	return nil
}

func (f *fakeHW) SetRegs(r *kvm.Regs) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regs = *r
	return nil
}

func (f *fakeHW) GetSregs(s *kvm.Sregs) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*s = f.sregs
	return nil
}

func (f *fakeHW) GetVCPUEvents(e *kvm.VCPUEvents) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*e = f.events
	return nil
}

func (f *fakeHW) SetVCPUEvents(e *kvm.VCPUEvents) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = *e
	return nil
}

func (f *fakeHW) GetXSAVE(x *kvm.XSAVE) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*x = f.xsave
	return nil
}

func (f *fakeHW) SetXSAVE(x *kvm.XSAVE) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.xsave = *x
	return nil
}

// recorder is a device that logs writes and answers reads with a value.
type recorder struct {
	mu     sync.Mutex
	writes []string
	answer byte
}

func (r *recorder) Read(off uint64, p []byte) {
	for i := range p {
		p[i] = r.answer
	}
}

func (r *recorder) Write(off uint64, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
}

// fakeStateHW adds the state accessors to fakeHW, keeping what was set.
type fakeStateHW struct {
	*fakeHW
	fpu   kvm.FPU
	lapic kvm.LAPICState
	mp    kvm.MPState
	msrs  map[uint32]uint64
}

func (f *fakeStateHW) SetSregs(s *kvm.Sregs) error      { f.sregs = *s; return nil }
func (f *fakeStateHW) GetFPU(p *kvm.FPU) error          { *p = f.fpu; return nil }
func (f *fakeStateHW) SetFPU(p *kvm.FPU) error          { f.fpu = *p; return nil }
func (f *fakeStateHW) GetLAPIC(p *kvm.LAPICState) error { *p = f.lapic; return nil }
func (f *fakeStateHW) SetLAPIC(p *kvm.LAPICState) error { f.lapic = *p; return nil }
func (f *fakeStateHW) GetMPState(p *kvm.MPState) error  { *p = f.mp; return nil }
func (f *fakeStateHW) SetMPState(p *kvm.MPState) error  { f.mp = *p; return nil }

// GetMSRs knows only the MSRs in f.msrs, stopping at the first other one
// as KVM does.
func (f *fakeStateHW) GetMSRs(es []kvm.MSREntry) (int, error) {
	for i := range es {
		v, ok := f.msrs[es[i].Index]
		if !ok {
			return i, nil
		}
		es[i].Data = v
	}
	return len(es), nil
}

func (f *fakeStateHW) SetMSRs(es []kvm.MSREntry) (int, error) {
	for _, e := range es {
		f.msrs[e.Index] = e.Data
	}
	return len(es), nil
}
