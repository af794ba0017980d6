package trace

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// A golden trace is what a guest asked of its VMM, in order, without what
// varies from run to run: one line per exit with the reason, the port or
// address, the direction, the size, the data written (not the data read,
// which can depend on timing: a UART's status) and the device. The
// teaching guests' golden traces are written so (images/testguest/lessons).

// GoldenLine is an exit as a golden trace line: "KVM_EXIT_IO out port
// 0x3f8 size 1 data 0x48 'H' -> serial (COM1)", "KVM_EXIT_IO in port
// 0x3fd size 1 -> serial (COM1)", "KVM_EXIT_HLT".
func GoldenLine(i *Info) string {
	if !i.Access() {
		return i.Reason.String()
	}
	if i.Write {
		return Line(i)
	}
	r := *i
	r.Data = nil
	s := Line(&r)
	// Line wrote " data 0x0..." for the missing bytes: cut it.
	if a, b, ok := strings.Cut(s, " data "); ok {
		_, dev, _ := strings.Cut(b, " -> ")
		s = a + " -> " + dev
	}
	return s
}

// GoldenFromJSON turns one line of a -trace file into its golden line, so
// a test can hold a real run's trace to a golden one.
func GoldenFromJSON(line []byte) (string, error) {
	var j struct {
		Reason string `json:"reason"`
		Port   string `json:"port"`
		Addr   string `json:"addr"`
		Size   int    `json:"size"`
		Dir    string `json:"dir"`
		Count  int    `json:"count"`
		Data   string `json:"data"`
		Device string `json:"device"`
	}
	if err := json.Unmarshal(line, &j); err != nil {
		return "", fmt.Errorf("trace line %q: %w", line, err)
	}
	i := Info{Size: j.Size, Count: max(j.Count, 1), Device: j.Device}
	switch j.Reason {
	case kvm.ExitIO.String():
		i.Reason, i.Write = kvm.ExitIO, j.Dir == "out"
	case kvm.ExitMMIO.String():
		i.Reason, i.Write = kvm.ExitMMIO, j.Dir == "write"
	default:
		return j.Reason, nil
	}
	addr := j.Port + j.Addr
	a, err := strconv.ParseUint(strings.TrimPrefix(addr, "0x"), 16, 64)
	if err != nil {
		return "", fmt.Errorf("trace line %q: address %q: %w", line, addr, err)
	}
	i.Addr = a
	for _, w := range strings.Fields(j.Data) {
		v, err := strconv.ParseUint(strings.TrimPrefix(w, "0x"), 16, 64)
		if err != nil {
			return "", fmt.Errorf("trace line %q: data %q: %w", line, w, err)
		}
		for k := range i.Size {
			i.Data = append(i.Data, byte(v>>(8*k)))
		}
	}
	return GoldenLine(&i), nil
}

// Lines collects each exit's golden line: the golden trace of a run.
type Lines struct {
	mu    sync.Mutex
	lines []string
}

// Exit does nothing; Handled has the data.
func (l *Lines) Exit(*vcpu.Event) vcpu.Action { return vcpu.Continue }

// Handled adds the exit's line. Exits a signal caused are not the guest's
// and are left out.
func (l *Lines) Handled(ev *vcpu.Event) {
	if _, ok := ev.Exit.(*kvm.InterruptedExit); ok {
		return
	}
	info := DescribeEvent(ev)
	line := GoldenLine(&info)
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
