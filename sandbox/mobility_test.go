package sandbox

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMobilityRules checks the filter with the control API's rules: its
// ioctls and TCP sockets allowed, the base list's still allowed, and
// other sockets and ioctls still denied.
func TestMobilityRules(t *testing.T) {
	for _, r := range MobilityRules() {
		if _, ok := syscallNumber(r.Syscall); !ok || r.Why == "" {
			t.Errorf("MobilityRules has %q (a system call: %v) with reason %q", r.Syscall, ok, r.Why)
		}
	}
	vm := filterVM(t, append(Rules(7), MobilityRules()...))
	const x86_64 = 0xc000003e
	allow, trap := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_TRAP)
	nr := func(name string) int { n, _ := syscallNumber(name); return n }
	tests := []struct {
		name string
		nr   int
		args []uint64
		want uint32
	}{
		{"KVM_RUN", nr("ioctl"), []uint64{7, 0xae80}, allow},
		{"KVM_GET_DIRTY_LOG", nr("ioctl"), []uint64{5, 0x4010ae42}, allow},
		{"KVM_SET_CLOCK", nr("ioctl"), []uint64{5, 0x4030ae7b}, allow},
		{"KVM_CREATE_VM", nr("ioctl"), []uint64{5, 0xae01}, trap},
		{"TCP socket", nr("socket"), []uint64{unix.AF_INET, unix.SOCK_STREAM}, allow},
		{"IPv6 socket", nr("socket"), []uint64{unix.AF_INET6, unix.SOCK_STREAM}, allow},
		{"netlink socket", nr("socket"), []uint64{unix.AF_NETLINK}, trap},
		{"packet socket", nr("socket"), []uint64{unix.AF_PACKET}, trap},
		{"pwrite64", nr("pwrite64"), []uint64{9}, allow},
		{"execve", nr("execve"), nil, trap},
	}
	for _, tt := range tests {
		got, err := vm.Run(seccompData(tt.nr, x86_64, tt.args...))
		if err != nil {
			t.Fatal(err)
		}
		if uint32(got) != tt.want {
			t.Errorf("filter(%s) = %#x, want %#x", tt.name, uint32(got), tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	c := func(name string) Case { return Case{Name: name, Conds: []Cond{{Arg: 0, Op: Equal, Value: 1}}} }
	got := merge([]Rule{
		{Syscall: "read"},
		{Syscall: "openat", Cases: []Case{c("ro")}},
		{Syscall: "socket", Cases: []Case{c("inet")}},
		{Syscall: "clone3", Errno: unix.ENOSYS},
		{Syscall: "openat"},
		{Syscall: "socket", Cases: []Case{c("inet6")}},
		{Syscall: "clone3"},
		{Syscall: "read", Cases: []Case{c("x")}},
	})
	want := []struct {
		name  string
		cases int
		errno unix.Errno
	}{{"read", 0, 0}, {"openat", 0, 0}, {"socket", 2, 0}, {"clone3", 0, unix.ENOSYS}}
	if len(got) != len(want) {
		t.Fatalf("merge() = %d rules, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Syscall != w.name || len(got[i].Cases) != w.cases || got[i].Errno != w.errno {
			t.Errorf("merge()[%d] = %s with %d cases, errno %v; want %s, %d, %v", i, got[i].Syscall, len(got[i].Cases), got[i].Errno, w.name, w.cases, w.errno)
		}
	}
}

// landlockConnectChild confines itself, with Files.Connect when
// $CONNECT is set, and tries an outgoing TCP connection to $ADDR.
func landlockConnectChild() {
	abi, err := Restrict(Files{Connect: os.Getenv("CONNECT") != ""}, false)
	must(err)
	c, err := net.Dial("tcp", os.Getenv("ADDR"))
	if err == nil {
		c.Close()
	}
	fmt.Printf("abi %d\nconnect: %v\n", abi, err)
}

// TestLandlockConnect checks Files.Connect: a confined govmm may connect
// out (a migration) with it, and not without.
func TestLandlockConnect(t *testing.T) {
	if LandlockABI() < 4 {
		t.Skip("this kernel's Landlock does not confine TCP (ABI 4)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tt := range []struct {
		connect string
		want    string
	}{{"1", "connect: <nil>\n"}, {"", "connect: permission denied\n"}} {
		out, errOut, ws := child(t, "landlock-connect", "ADDR="+ln.Addr().String(), "CONNECT="+tt.connect)
		if ws.ExitStatus() != 0 || !strings.HasSuffix(out, tt.want) {
			t.Errorf("a child confined with Connect %q: %v, stdout %q, stderr %q; want it to end %q", tt.connect, ws, out, errOut, tt.want)
		}
	}
}
