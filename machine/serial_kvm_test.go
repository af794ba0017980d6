package machine

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// pausedTerminal is serial output that takes nothing until resume is
// called, like a terminal paused with Ctrl-S.
type pausedTerminal struct {
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	buf    strings.Builder
}

func (p *pausedTerminal) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.paused {
		p.cond.Wait()
	}
	return p.buf.Write(b)
}

func (p *pausedTerminal) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.cond.Broadcast()
}

func (p *pausedTerminal) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// resumeAtExit is a vCPU observer that resumes a paused terminal when the
// guest writes its exit status to the debug-exit port, and notes how much
// output had reached the terminal by then.
type resumeAtExit struct {
	out     *pausedTerminal
	written chan int // the terminal's length at the exit write
}

func (r *resumeAtExit) Exit(ev *vcpu.Event) vcpu.Action {
	if io, ok := ev.Exit.(*kvm.IOExit); ok && io.Out && io.Port == devices.PortDebugExit+devices.DebugExitStatus {
		r.written <- len(r.out.String())
		r.out.resume()
	}
	return vcpu.Continue
}

func (r *resumeAtExit) Handled(*vcpu.Event) {}

// TestRunWaitsForSerialOutput: a guest whose console is stalled still runs
// to its end (its output waits in the UART's buffer, not in the vCPU), and
// Run returns only once every byte has reached the output, which govmm
// exec depends on.
func TestRunWaitsForSerialOutput(t *testing.T) {
	kvmtest.Require(t)
	g := guests(t)
	out := &pausedTerminal{paused: true}
	out.cond = sync.NewCond(&out.mu)
	var log syncBuffer
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, g.ELF), Cmdline: "mode=pio n=10",
		MemSize: 64 << 20, CPUs: 1, SerialOut: out, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	obs := &resumeAtExit{out: out, written: make(chan int, 1)}
	m.VCPUs()[0].SetObserver(obs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := m.Run(ctx)
	if err != nil || res.Reason != vcpu.StopPowerOff || res.Status != testguest.ExitOK {
		t.Fatalf("Run() = %+v, %v, want a power off with status 0\nlog:\n%s", res, err, log.String())
	}
	select {
	case n := <-obs.written:
		if n != 0 {
			t.Errorf("the paused terminal had %d bytes at the guest's exit, want 0", n)
		}
	default:
		t.Fatalf("the guest ended without writing to the debug-exit port")
	}
	if got, want := out.String(), "pio done n=10\n"; !strings.HasSuffix(got, want) {
		t.Errorf("serial output when Run returned ends %q, want the guest's last line %q", got[max(0, len(got)-40):], want)
	}
}
