package trace

import (
	"bytes"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// TestGoldenFromJSON: a run's golden lines are the same whether taken
// from the run itself (Lines) or from its -trace file (GoldenFromJSON),
// and leave out what may vary: times, instruction addresses, read data.
func TestGoldenFromJSON(t *testing.T) {
	steps := []step{
		{0x7c06, 0x3f8, &kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 1, Data: []byte{'H'}}},
		{0x7c09, 0x3fd, &kvm.IOExit{Port: 0x3fd, Size: 1, Count: 1, Data: []byte{0}}},
		{0x7c0c, 0x3f8, &kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 2, Data: []byte{'o', 'k'}}},
		{0x7c0c, 0x0, &kvm.MMIOExit{Addr: 0xd0000000, Write: true, Data: []byte{0x34, 0x12}}},
		{0x7c0c, 0x0, &kvm.MMIOExit{Addr: 0xd0000005, Data: []byte{0}}},
		{0x7c0c, 0xf4, &kvm.IOExit{Port: 0xf4, Out: true, Size: 1, Count: 1, Data: []byte{0}}},
	}
	want := []string{
		"KVM_EXIT_IO out port 0x3f8 size 1 data 0x48 'H' -> serial (COM1)",
		"KVM_EXIT_IO in port 0x3fd size 1 -> serial (COM1)",
		"KVM_EXIT_IO out port 0x3f8 size 1 count 2 data 0x6f 'o' 0x6b 'k' -> serial (COM1)",
		"KVM_EXIT_MMIO write 0xd0000000 size 2 data 0x1234 -> serial (MMIO alias)",
		"KVM_EXIT_MMIO read 0xd0000005 size 1 -> serial (MMIO alias)",
		"KVM_EXIT_IO out port 0xf4 size 1 data 0x0 -> no device",
		"KVM_EXIT_HLT",
	}
	var buf bytes.Buffer
	w, lines := NewWriter(&buf, 1, true), &Lines{}
	runScript(t, realMode(), map[uint64][]byte{0x7c00: realCode}, steps, vcpu.Chain{w, lines})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := lines.Lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lines() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		got, err := GoldenFromJSON([]byte(line))
		if err != nil || i >= len(want) || got != want[i] {
			t.Errorf("GoldenFromJSON(%s) = %q, %v, want %q", line, got, err, want[min(i, len(want)-1)])
		}
	}
	if _, err := GoldenFromJSON([]byte("not json")); err == nil {
		t.Errorf("GoldenFromJSON(not json) = nil error, want one")
	}
}
