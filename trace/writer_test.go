package trace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Real-mode code at 0x7c00:
//
//	7c00: mov dx, 0x3f8   ba f8 03
//	7c03: mov al, 0x48    b0 48
//	7c05: out dx, al      ee
//	7c06: add dx, 5       83 c2 05
//	7c09: in al, dx       ec
//	7c0a: rep outsb       f3 6e
//	7c0c: hlt             f4
var realCode = []byte{0xba, 0xf8, 0x03, 0xb0, 0x48, 0xee, 0x83, 0xc2, 0x05, 0xec, 0xf3, 0x6e, 0xf4}

// Long-mode code at 0x100000:
//
//	100000: mov byte ptr [rdx], al   88 02
//	100002: mov al, byte ptr [rdx+5] 8a 42 05
//	100005: out 0xf4, al             e6 f4
var longCode = []byte{0x88, 0x02, 0x8a, 0x42, 0x05, 0xe6, 0xf4}

func TestWriterLines(t *testing.T) {
	out := func(port uint16, size uint8, data ...byte) *kvm.IOExit {
		return &kvm.IOExit{Port: port, Out: true, Size: size, Count: uint32(len(data)) / uint32(size), Data: data}
	}
	in := &kvm.IOExit{Port: 0x3fd, Size: 1, Count: 1, Data: []byte{0}}
	tests := []struct {
		name     string
		sregs    kvm.Sregs
		emulated bool
		steps    []step
		want     []string // the lines, without ns and vmm_ns
	}{
		{
			name: "real mode, emulated: RIP is past the OUT, on the IN", sregs: realMode(), emulated: true,
			steps: []step{
				{0x7c06, 0x3f8, out(0x3f8, 1, 'H')},
				{0x7c09, 0x3fd, in},
				{0x7c0c, 0x3f8, out(0x3f8, 1, 'a', 'b', 'c')},
			},
			want: []string{
				`{"seq":1,"vcpu":0,"reason":"KVM_EXIT_IO","mode":"real","rip":"0x7c05","insn":"out dx, al","next_rip":"0x7c06","port":"0x3f8","size":1,"dir":"out","data":"0x48","device":"serial (COM1)"}`,
				`{"seq":2,"vcpu":0,"reason":"KVM_EXIT_IO","mode":"real","rip":"0x7c09","insn":"in al, dx","port":"0x3fd","size":1,"dir":"in","data":"0x60","device":"serial (COM1)"}`,
				`{"seq":3,"vcpu":0,"reason":"KVM_EXIT_IO","mode":"real","rip":"0x7c0a","insn":"rep outsb","next_rip":"0x7c0c","port":"0x3f8","size":1,"dir":"out","count":3,"data":"0x61 0x62 0x63","device":"serial (COM1)"}`,
				`{"seq":4,"vcpu":0,"reason":"KVM_EXIT_HLT","mode":"real","rip":"0x7c0c","insn":"hlt"}`,
			},
		},
		{
			name: "hardware virtualization: RIP on the OUT", sregs: realMode(), emulated: false,
			steps: []step{{0x7c05, 0x3f8, out(0x3f8, 1, 'H')}},
			want: []string{
				`{"seq":1,"vcpu":0,"reason":"KVM_EXIT_IO","mode":"real","rip":"0x7c05","insn":"out dx, al","port":"0x3f8","size":1,"dir":"out","data":"0x48","device":"serial (COM1)"}`,
				`{"seq":2,"vcpu":0,"reason":"KVM_EXIT_HLT","mode":"real","rip":"0x7c05","insn":"out dx, al"}`,
			},
		},
		{
			name: "long mode MMIO: a write is done, a read is not; a port nobody owns", sregs: longMode(), emulated: true,
			steps: []step{
				{0x100002, 0xd0000000, &kvm.MMIOExit{Addr: 0xd0000000, Write: true, Data: []byte{0x41}}},
				{0x100002, 0xd0000000, &kvm.MMIOExit{Addr: 0xd0000005, Data: []byte{0}}},
				{0x100007, 0, out(0xf4, 1, 0)},
				{0x100007, 0, &kvm.DebugExit{Exception: 1, PC: 0x100007, DR6: 0xffff4ff0}},
				{0x100007, 0, &kvm.InternalErrorExit{Suberror: kvm.InternalErrorEmulation, Data: []uint64{1, 0xcc01, 0}}},
			},
			want: []string{
				`{"seq":1,"vcpu":0,"reason":"KVM_EXIT_MMIO","mode":"long","rip":"0x100000","insn":"mov byte ptr [rdx], al","next_rip":"0x100002","addr":"0xd0000000","size":1,"dir":"write","data":"0x41","device":"serial (MMIO alias)"}`,
				`{"seq":2,"vcpu":0,"reason":"KVM_EXIT_MMIO","mode":"long","rip":"0x100002","insn":"mov al, byte ptr [rdx+0x5]","addr":"0xd0000005","size":1,"dir":"read","data":"0x20","device":"serial (MMIO alias)"}`,
				`{"seq":3,"vcpu":0,"reason":"KVM_EXIT_IO","mode":"long","rip":"0x100005","insn":"out 0xf4, al","next_rip":"0x100007","port":"0xf4","size":1,"dir":"out","data":"0x0"}`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, 1, tt.emulated)
			code := map[uint64][]byte{0x7c00: realCode, 0x100000: longCode}
			runScript(t, tt.sregs, code, tt.steps, w)
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got := withoutTimes(t, buf.String())
			for i, want := range tt.want {
				if i >= len(got) || got[i] != want {
					g := "(none)"
					if i < len(got) {
						g = got[i]
					}
					t.Errorf("line %d =\n%s\nwant\n%s", i+1, g, want)
				}
			}
		})
	}
}

// TestWriterDebugAndErrors: the keys of a debug exit and of an emulation
// failure, read back as JSON.
func TestWriterDebugAndErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 1, true)
	hw := []step{
		{0x100007, 0, &kvm.IOExit{Port: 0xf4, Out: true, Size: 1, Count: 1, Data: []byte{0}}}, // turns stepping on
		{0x100002, 0, &kvm.DebugExit{Exception: 1, PC: 0x100002, DR6: 0xffff4ff0}},
		{0x100002, 0, &kvm.DebugExit{Exception: 1, PC: 0x100002, DR6: 0xffff0ff2}},
		{0x100002, 0, &kvm.InternalErrorExit{Suberror: kvm.InternalErrorEmulation, Data: []uint64{1, 0xc1b80ff304, 0}}}, // popcnt eax, ecx
	}
	_, err := runScript(t, longMode(), map[uint64][]byte{0x100000: longCode}, hw, vcpu.Chain{w, stepAll{}})
	if err == nil || !strings.Contains(err.Error(), "emulate") {
		t.Fatalf("Run() = %v, want the emulation failure", err)
	}
	w.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []map[string]any{
		{"reason": "KVM_EXIT_IO"},
		{"reason": "KVM_EXIT_DEBUG", "why": "single-step", "exception": 1.0, "dr6": "0xffff4ff0", "pc": "0x100002", "insn": "mov al, byte ptr [rdx+0x5]"},
		{"reason": "KVM_EXIT_DEBUG", "why": "breakpoint 1", "dr6": "0xffff0ff2"},
		{"reason": "KVM_EXIT_INTERNAL_ERROR", "suberror": "emulation failure", "bytes": "f3 0f b8 c1"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		for k, v := range want[i] {
			if m[k] != v {
				t.Errorf("line %d: %q = %v, want %v\n%s", i+1, k, m[k], v, line)
			}
		}
	}
}

// stepAll keeps guest debugging on, so debug exits are the debugger's.
type stepAll struct{}

func (stepAll) Exit(*vcpu.Event) vcpu.Action { return vcpu.Step }
func (stepAll) Handled(*vcpu.Event)          {}

// withoutTimes returns the trace's lines with ns and vmm_ns removed, after
// checking that each line is a JSON object that has them.
func withoutTimes(t *testing.T, trace string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(trace), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %v\n%s", err, line)
		}
		for _, k := range []string{"ns", "vmm_ns"} {
			if _, ok := m[k].(float64); !ok {
				t.Errorf("line has no number %q:\n%s", k, line)
			}
		}
		for _, k := range []string{"ns", "vmm_ns"} {
			i := strings.Index(line, `,"`+k+`":`)
			j := i + len(k) + 4
			for j < len(line) && line[j] >= '0' && line[j] <= '9' {
				j++
			}
			line = line[:i] + line[j:]
		}
		out = append(out, line)
	}
	return out
}

func TestAppendString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"serial (COM1)", `,"k":"serial (COM1)"`},
		{`a"b\c`, `,"k":"a\"b\\c"`},
		{"tab\there\n", `,"k":"tab\u0009here\u000a"`},
	} {
		got := string(appendString(nil, "k", tt.in))
		if got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte("{"+got[1:]+"}"), &m); err != nil || m["k"] != tt.in {
			t.Errorf("appendString(%q) reads back as %q, %v", tt.in, m["k"], err)
		}
	}
}

func TestDR6(t *testing.T) {
	for _, tt := range []struct {
		e    kvm.DebugExit
		want string
	}{
		{kvm.DebugExit{Exception: 1, DR6: 0xffff4ff0}, "single-step"},
		{kvm.DebugExit{Exception: 1, DR6: 0xffff0ff1}, "breakpoint 0"},
		{kvm.DebugExit{Exception: 1, DR6: 0xffff4ff8}, "single-step+breakpoint 3"},
		{kvm.DebugExit{Exception: 3}, "int3"},
		{kvm.DebugExit{Exception: 1, DR6: 0xffff0ff0}, "unknown"},
	} {
		if got := DR6(&tt.e); got != tt.want {
			t.Errorf("DR6(%v) = %q, want %q", fmt.Sprint(&tt.e), got, tt.want)
		}
	}
}
