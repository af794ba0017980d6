package trace

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

func TestStatsCounts(t *testing.T) {
	s := NewStats()
	out := &kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 1, Data: []byte{'x'}}
	steps := []step{
		{0x7c06, 0x3f8, out}, {0x7c06, 0x3f8, out},
		{0x7c06, 0x80, &kvm.IOExit{Port: 0x80, Out: true, Size: 1, Count: 1, Data: []byte{1}}},
		{0x100002, 0, &kvm.MMIOExit{Addr: 0xd0000000, Write: true, Data: []byte{1}}},
	}
	runScript(t, realMode(), nil, steps, s)
	snap := s.Snapshot()
	for _, tt := range []struct {
		reason kvm.ExitReason
		want   uint64
	}{{kvm.ExitIO, 3}, {kvm.ExitMMIO, 1}, {kvm.ExitHLT, 1}} {
		if got := snap.ByReason[tt.reason].N; got != tt.want {
			t.Errorf("ByReason[%v].N = %d, want %d", tt.reason, got, tt.want)
		}
	}
	for name, want := range map[string]uint64{"port serial (COM1)": 2, "port (no device)": 1, "mmio serial (MMIO alias)": 1} {
		if got := snap.ByDevice[name].N; got != want {
			t.Errorf("ByDevice[%q].N = %d, want %d (have %v)", name, got, want, snap.ByDevice)
		}
	}
	prev := snap
	runScript(t, realMode(), nil, steps[:1], s)
	snap = s.Snapshot()
	snap.KVM = []map[string]uint64{{"exits": 10, "halt_exits": 0}}
	prev.KVM = []map[string]uint64{{"exits": 4}}
	d := snap.Since(prev)
	if d.ByReason[kvm.ExitIO].N != 1 || d.ByReason[kvm.ExitHLT].N != 1 || len(d.ByDevice) != 1 || d.KVM[0]["exits"] != 6 {
		t.Errorf("Since() = %+v, want one port write, one halt, and 6 KVM exits", d)
	}
	var buf bytes.Buffer
	snap.Table(&buf, "govmm: ")
	for _, want := range []string{"exits to user space: 7", "KVM_EXIT_IO", "port serial (COM1)", "KVM's own counters, vCPU 0", "exits=10"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Table() lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "halt_exits") {
		t.Errorf("Table() lists a zero KVM counter:\n%s", buf.String())
	}
}

func TestRecorderKeepsTheLast(t *testing.T) {
	r := NewRecorder(3, 1)
	var steps []step
	for i := range 5 {
		steps = append(steps, step{0x7c06, 0x3f8, &kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 1, Data: []byte{'a' + byte(i)}}})
	}
	steps = append(steps, step{0x7c09, 0x3fd, &kvm.IOExit{Port: 0x3fd, Size: 1, Count: 1, Data: []byte{0}}})
	steps = append(steps, step{0x7c09, 0, &kvm.ShutdownExit{}})
	_, err := runScript(t, realMode(), nil, steps, r)
	if err == nil {
		t.Fatal("Run() = nil, want the triple fault")
	}
	if got := r.Total(); got != 7 {
		t.Errorf("Total() = %d, want 7", got)
	}
	var buf bytes.Buffer
	r.Dump(&buf, 0)
	want := []string{
		"#5 vcpu0 KVM_EXIT_IO out port 0x3f8 size 1 data 0x65 'e' -> serial (COM1) [guest",
		"#6 vcpu0 KVM_EXIT_IO in port 0x3fd size 1 data 0x60 '`' -> serial (COM1) [guest",
		"#7 vcpu0 KVM_EXIT_SHUTDOWN (shutdown (triple fault)) [guest",
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Dump() = %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("Dump() line %d = %q, want it to start %q", i+1, lines[i], want[i])
		}
	}
}

// loopHW returns one port write n times, then halts; it allocates nothing.
type loopHW struct {
	scriptHW
	n   int
	out kvm.IOExit
	hlt kvm.HLTExit
}

func (l *loopHW) Run() (kvm.Exit, error) {
	if l.n == 0 {
		return &l.hlt, nil
	}
	l.n--
	return &l.out, nil
}

// TestObserversAllocateNothing: the statistics and the flight recorder,
// which govmm may keep on for a whole run, allocate nothing per exit: a
// run of 10,000 exits allocates as much as a run of 10.
func TestObserversAllocateNothing(t *testing.T) {
	io := devices.NewBus(devices.PortIO)
	if err := io.Register(0x3f8, 8, "serial (COM1)", answer(0)); err != nil {
		t.Fatal(err)
	}
	mem, err := memory.FromRegions(memory.Region{Start: 0, Host: make([]byte, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	allocs := func(n int) float64 {
		stats, rec := NewStats(), NewRecorder(64, 1)
		return testing.AllocsPerRun(5, func() {
			hw := &loopHW{n: n, out: kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 1, Data: []byte{'x'}}}
			v := vcpu.New(vcpu.Config{HW: hw, IO: io, MMIO: devices.NewBus(devices.MMIO), Mem: mem})
			v.SetObserver(vcpu.Chain{stats, rec})
			if _, err := v.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
	if few, many := allocs(10), allocs(10010); few != many {
		t.Errorf("allocations with 10010 exits = %v, with 10 = %v: want the same (%.4f per exit)", many, few, (many-few)/10000)
	}
}
