package sandbox

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSyscallNames checks the generated table (go generate) against
// golang.org/x/sys's constants, both ways.
func TestSyscallNames(t *testing.T) {
	for name, want := range map[string]int{
		"read": unix.SYS_READ, "ioctl": unix.SYS_IOCTL, "newfstatat": unix.SYS_NEWFSTATAT,
		"rt_sigaction": unix.SYS_RT_SIGACTION, "clone3": unix.SYS_CLONE3, "pread64": unix.SYS_PREAD64,
		"landlock_restrict_self": unix.SYS_LANDLOCK_RESTRICT_SELF, "seccomp": unix.SYS_SECCOMP,
	} {
		if got, ok := syscallNumber(name); !ok || got != want {
			t.Errorf("syscallNumber(%q) = %d, %v; want %d", name, got, ok, want)
		}
		if syscallNames[want] != name {
			t.Errorf("syscallNames[%d] = %q, want %q", want, syscallNames[want], name)
		}
	}
	for nr, name := range syscallNames {
		if got, ok := syscallNumber(name); name != "" && (!ok || got != nr) {
			t.Errorf("syscallNumber(%q) = %d, %v; the table has it at %d", name, got, ok, nr)
		}
	}
	if !slices.IsSortedFunc(syscallsByName[:], func(a, b syscallEntry) int { return strings.Compare(a.name, b.name) }) {
		t.Error("syscallsByName is not sorted by name: syscallNumber's binary search needs it (go generate)")
	}
	if _, ok := syscallNumber("no_such_call"); ok {
		t.Error(`syscallNumber("no_such_call") found a number`)
	}
}

// TestFilterComparisons runs each comparison of a case on 64-bit
// arguments that differ only in their high or only in their low word,
// and a case of two conditions that must both hold.
func TestFilterComparisons(t *testing.T) {
	const hiLo = 0x1_0000_0002
	rules := []Rule{
		{Syscall: "read", Cases: []Case{{Name: "eq", Conds: []Cond{{Arg: 2, Op: Equal, Value: hiLo}}}}},
		{Syscall: "write", Cases: []Case{{Name: "ne", Conds: []Cond{{Arg: 0, Op: NotEqual, Value: hiLo}}}}},
		{Syscall: "mmap", Cases: []Case{{Name: "set", Conds: []Cond{{Arg: 3, Op: BitsSet, Value: 0x3_0000_0005}}}}},
		{Syscall: "mprotect", Cases: []Case{{Name: "clear", Conds: []Cond{{Arg: 5, Op: BitsClear, Value: 0x8_0000_0001}}}}},
		{Syscall: "ioctl", Cases: []Case{
			{Name: "two", Conds: []Cond{{Arg: 0, Op: Equal, Value: 7}, {Arg: 1, Op: Equal, Value: 9}}},
			{Name: "other", Conds: []Cond{{Arg: 0, Op: Equal, Value: 8}}},
		}},
		{Syscall: "clone3", Errno: unix.ENOSYS},
	}
	vm := filterVM(t, rules)
	const x86_64 = 0xc000003e
	allow, trap := uint32(ActionAllow), uint32(ActionTrap)
	args := func(i int, v uint64) []uint64 { a := make([]uint64, 6); a[i] = v; return a }
	tests := []struct {
		name string
		call string
		args []uint64
		want uint32
	}{
		{"equal", "read", args(2, hiLo), allow},
		{"equal, low word differs", "read", args(2, hiLo+1), trap},
		{"equal, high word differs", "read", args(2, 2), trap},
		{"not equal", "write", args(0, 2), allow},
		{"not equal, high word same", "write", args(0, hiLo-1), allow},
		{"not equal, same value", "write", args(0, hiLo), trap},
		{"bits set", "mmap", args(3, 0xf_0000_00ff), allow},
		{"bits set, a high bit missing", "mmap", args(3, 0x1_0000_0005), trap},
		{"bits set, a low bit missing", "mmap", args(3, 0x3_0000_0004), trap},
		{"bits clear", "mprotect", args(5, 0x7_0000_0006), allow},
		{"bits clear, a high bit set", "mprotect", args(5, 0x8_0000_0000), trap},
		{"bits clear, a low bit set", "mprotect", args(5, 1), trap},
		{"both conditions", "ioctl", []uint64{7, 9}, allow},
		{"first condition only", "ioctl", []uint64{7, 8}, trap},
		{"second case", "ioctl", []uint64{8, 1}, allow},
		{"neither case", "ioctl", []uint64{9, 9}, trap},
		{"errno rule", "clone3", nil, uint32(ActionErrno(unix.ENOSYS))},
		{"not on the list", "execve", nil, trap},
	}
	for _, tt := range tests {
		nr, _ := syscallNumber(tt.call)
		got, err := vm.Run(seccompData(nr, x86_64, tt.args...))
		if err != nil {
			t.Fatal(err)
		}
		if uint32(got) != tt.want {
			t.Errorf("%s: filter(%s, %#x) = %#x, want %#x", tt.name, tt.call, tt.args, uint32(got), tt.want)
		}
	}
}

// TestFilterRefusesBadRules: an unknown call, argument or comparison is
// an error, not a filter that silently allows or denies.
func TestFilterRefusesBadRules(t *testing.T) {
	for name, r := range map[string]Rule{
		"unknown call":       {Syscall: "no_such_call"},
		"argument 6":         {Syscall: "read", Cases: []Case{{Name: "x", Conds: []Cond{{Arg: 6, Op: Equal}}}}},
		"unknown comparison": {Syscall: "read", Cases: []Case{{Name: "x", Conds: []Cond{{Arg: 0, Op: Op(99)}}}}},
	} {
		if _, err := Program([]Rule{r}, ActionTrap); err == nil {
			t.Errorf("%s: Program succeeded, want an error", name)
		}
	}
}

// TestFilterLongBody: a call with more cases than an 8-bit jump can skip
// (its body is passed over with ja) still matches its last case, refuses
// others, and leaves the calls after it reachable.
func TestFilterLongBody(t *testing.T) {
	var cases []Case
	for i := range 100 { // 5 instructions each: 500 > 255
		cases = append(cases, Case{Name: "req", Conds: []Cond{{Arg: 1, Op: Equal, Value: uint64(0x1000 + i)}}})
	}
	vm := filterVM(t, []Rule{{Syscall: "ioctl", Cases: cases}, {Syscall: "write"}})
	const x86_64 = 0xc000003e
	ioctl, _ := syscallNumber("ioctl")
	write, _ := syscallNumber("write")
	for _, tt := range []struct {
		nr   int
		args []uint64
		want Action
	}{
		{ioctl, []uint64{3, 0x1000 + 99}, ActionAllow},
		{ioctl, []uint64{3, 0x1000}, ActionAllow},
		{ioctl, []uint64{3, 0x1000 + 100}, ActionTrap},
		{write, nil, ActionAllow},
	} {
		got, err := vm.Run(seccompData(tt.nr, x86_64, tt.args...))
		if err != nil {
			t.Fatal(err)
		}
		if Action(got) != tt.want {
			t.Errorf("filter(nr %d, %#x) = %#x, want %#x", tt.nr, tt.args, got, tt.want)
		}
	}
}
