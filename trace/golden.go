package trace

import (
	"sync"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Lines collects each exit as Line writes it, without times or
// addresses of instructions: what a guest asked of its VMM, in order. The
// teaching guests' golden traces are these lines.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

// Exit does nothing; Handled has the data of reads.
func (l *Lines) Exit(*vcpu.Event) vcpu.Action { return vcpu.Continue }

// Handled adds the exit's line. Exits a signal caused are not the guest's
// and are left out.
func (l *Lines) Handled(ev *vcpu.Event) {
	if _, ok := ev.Exit.(*kvm.InterruptedExit); ok {
		return
	}
	info := DescribeEvent(ev)
	line := Line(&info)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

// Lines returns the lines so far.
func (l *Lines) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
