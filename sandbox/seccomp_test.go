package sandbox

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestRulesNameSyscalls checks every rule names an x86_64 system call,
// once.
func TestRulesNameSyscalls(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules(1) {
		if _, ok := syscallNumber(r.Syscall); !ok {
			t.Errorf("Rules(1) has %q, which is not an x86_64 system call", r.Syscall)
		}
		if seen[r.Syscall] {
			t.Errorf("Rules(1) has %q twice", r.Syscall)
		}
		seen[r.Syscall] = true
		if r.Why == "" {
			t.Errorf("Rules(1): %s says nothing of who needs it", r.Syscall)
		}
	}
}

// seccompData lays out struct seccomp_data as the kernel gives it on
// x86_64 (little-endian), for x/net/bpf's VM, whose 32-bit loads are
// big-endian: each 32-bit word is written big-endian where the kernel's
// word is.
func seccompData(nr int, auditArch uint32, args ...uint64) []byte {
	var b [64]byte
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], auditArch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	return b[:]
}

// filterVM assembles rules (the rest trapped) for x/net/bpf's VM.
func filterVM(t *testing.T, rules []Rule) *bpf.VM {
	t.Helper()
	prog, err := Program(rules, ActionTrap)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestFilterDecides runs the assembled filter on system calls govmm makes
// and on calls it must never make.
func TestFilterDecides(t *testing.T) {
	const pid = 4242
	vm := filterVM(t, Rules(pid))
	const x86_64 = 0xc000003e
	allow, trap := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_TRAP)
	nr := func(name string) int { n, _ := syscallNumber(name); return n }
	tests := []struct {
		name string
		nr   int
		arch uint32
		args []uint64
		want uint32
	}{
		{"KVM_RUN", nr("ioctl"), x86_64, []uint64{7, 0xae80}, allow},
		{"KVM_IRQ_LINE", nr("ioctl"), x86_64, []uint64{6, 0x4008ae61, 0x1000}, allow},
		{"TCSETS", nr("ioctl"), x86_64, []uint64{0, unix.TCSETS}, allow},
		{"KVM_RUN with high bits set", nr("ioctl"), x86_64, []uint64{7, 1<<32 | 0xae80}, trap},
		{"KVM_CREATE_VM", nr("ioctl"), x86_64, []uint64{5, 0xae01}, trap},
		{"KVM_SET_USER_MEMORY_REGION", nr("ioctl"), x86_64, []uint64{6, 0x4020ae46}, trap},
		{"TIOCSTI", nr("ioctl"), x86_64, []uint64{0, unix.TIOCSTI}, trap},
		{"write", nr("write"), x86_64, []uint64{1}, allow},
		{"execve", nr("execve"), x86_64, nil, trap},
		{"execveat", nr("execveat"), x86_64, nil, trap},
		{"openat", nr("openat"), x86_64, []uint64{uint64(0xffffff9c), 0x1000}, trap},
		{"socket", nr("socket"), x86_64, []uint64{unix.AF_INET}, trap},
		{"ptrace", nr("ptrace"), x86_64, nil, trap},
		{"a thread", nr("clone"), x86_64, []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD}, allow},
		{"fork", nr("clone"), x86_64, []uint64{uint64(unix.SIGCHLD)}, trap},
		{"clone3", nr("clone3"), x86_64, nil, uint32(unix.SECCOMP_RET_ERRNO) | uint32(unix.ENOSYS)},
		{"mmap read-write", nr("mmap"), x86_64, []uint64{0, 4096, unix.PROT_READ | unix.PROT_WRITE}, allow},
		{"mmap executable", nr("mmap"), x86_64, []uint64{0, 4096, unix.PROT_READ | unix.PROT_EXEC}, trap},
		{"mprotect executable", nr("mprotect"), x86_64, []uint64{0, 4096, unix.PROT_EXEC}, trap},
		{"tgkill own thread", nr("tgkill"), x86_64, []uint64{pid, pid + 1, uint64(unix.SIGURG)}, allow},
		{"tgkill another process", nr("tgkill"), x86_64, []uint64{1, 1, uint64(unix.SIGKILL)}, trap},
		{"kill", nr("kill"), x86_64, []uint64{1, uint64(unix.SIGKILL)}, trap},
		{"rt_sigaction SIGINT", nr("rt_sigaction"), x86_64, []uint64{uint64(unix.SIGINT)}, allow},
		{"rt_sigaction SIGSYS", nr("rt_sigaction"), x86_64, []uint64{uint64(unix.SIGSYS)}, trap},
		{"fcntl F_SETFL", nr("fcntl"), x86_64, []uint64{0, unix.F_SETFL}, allow},
		{"fcntl F_DUPFD", nr("fcntl"), x86_64, []uint64{0, unix.F_DUPFD}, trap},
		{"i386 write", 4, 0x40000003, nil, trap},
		{"x32 call", nr("write") | 0x40000000, x86_64, nil, uint32(unix.SECCOMP_RET_ERRNO) | uint32(unix.ENOSYS)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vm.Run(seccompData(tt.nr, tt.arch, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if uint32(got) != tt.want {
				t.Errorf("filter(%s, nr %d, args %#x) = %#x, want %#x", tt.name, tt.nr, tt.args, uint32(got), tt.want)
			}
		})
	}
}

// TestPrint checks -print-seccomp's text names every call and request.
func TestPrint(t *testing.T) {
	var b bytes.Buffer
	if err := Print(&b, 99); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range Rules(99) {
		if !strings.Contains(out, "\n"+r.Syscall+" ") {
			t.Errorf("Print lacks %s:\n%s", r.Syscall, out)
		}
		for _, c := range r.Cases {
			if !strings.Contains(out, c.Name) {
				t.Errorf("Print lacks %s's case %s", r.Syscall, c.Name)
			}
		}
	}
}

// TestRequestsMatchHeaders checks each ioctl number against the kernel's
// headers, through gcc.
func TestRequestsMatchHeaders(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("needs gcc and the kernel's headers (apt-get install gcc linux-libc-dev)")
	}
	dir := t.TempDir()
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <linux/kvm.h>\n#include <sys/ioctl.h>\nint main(void){\n")
	all := append(append(append([]Case{}, KVMRequests...), TerminalRequests...), MobilityRequests...)
	for _, c := range all {
		fmt.Fprintf(&src, "printf(\"%s %%#lx\\n\", (unsigned long)(%s));\n", c.Name, c.Name)
	}
	src.WriteString("return 0;}\n")
	if err := os.WriteFile(dir+"/r.c", []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-o", dir+"/r", dir+"/r.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc %s/r.c (needs linux-libc-dev): %v\n%s", dir, err, out)
	}
	out, err := exec.Command(dir + "/r").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, v, _ := strings.Cut(line, " ")
		want[name] = v
	}
	for _, c := range all {
		if got := fmt.Sprintf("%#x", c.Conds[0].Value); got != want[c.Name] {
			t.Errorf("%s = %s, want %s (<linux/kvm.h>)", c.Name, got, want[c.Name])
		}
	}
}

// childEnv makes the test binary a child that confines itself and then
// misbehaves, so the parent can watch: a filter cannot be undone.
const childEnv = "GOVMM_SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "execve":
		must(Install(SeccompOn))
		// execve(NULL, ...) itself, not syscall.Exec, which may call
		// prlimit64 first (to restore RLIMIT_NOFILE).
		_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, 0, 0, 0)
		fmt.Println("execve returned:", errno)
	case "log":
		must(Install(SeccompLog))
		_, _, errno := syscall.RawSyscall(syscall.SYS_EXECVE, 0, 0, 0)
		fmt.Println("execve returned:", errno)
	case "landlock":
		abi, err := Restrict(Files{Read: []string{os.Getenv("ALLOWED")}}, false)
		must(err)
		_, errOK := os.ReadFile(os.Getenv("ALLOWED"))
		_, errDenied := os.ReadFile(os.Getenv("DENIED"))
		fmt.Printf("abi %d\nallowed: %v\ndenied: %v\n", abi, errOK, errDenied)
	case "landlock-connect":
		landlockConnectChild()
	}
	os.Exit(0)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

// child runs this test binary as a child doing what, and returns its
// output and how it ended.
func child(t *testing.T, what string, env ...string) (stdout, stderr string, ws syscall.WaitStatus) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+what), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// TestDeniedCallIsReported installs the filter in a child that then calls
// execve: the child prints one line naming the call and dies by SIGSYS;
// in log mode the call goes through.
func TestDeniedCallIsReported(t *testing.T) {
	if linksLibc() {
		t.Skip("this test binary was built with cgo, where Install refuses (errLibc): run it with CGO_ENABLED=0, as make test does")
	}
	out, errOut, ws := child(t, "execve")
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Errorf("a child calling execve under the filter ended with %v, want killed by SIGSYS\nstdout: %s\nstderr: %s", ws, out, errOut)
	}
	want := DeniedPrefix + "execve (59), args 0x"
	if !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "-print-seccomp") {
		t.Errorf("the child's stderr = %q, want one line starting %q", errOut, want)
	}
	if out != "" {
		t.Errorf("the child went on after the denied call: %q", out)
	}

	out, errOut, ws = child(t, "log")
	if ws.ExitStatus() != 0 || !strings.Contains(out, "execve returned: bad address") {
		t.Errorf("under -seccomp log, the child's execve: %v, stdout %q, stderr %q; want it to run and fail with EFAULT", ws, out, errOut)
	}
}

// TestLandlockConfinesFiles restricts a child to one file: it reads that
// one and is refused another.
func TestLandlockConfinesFiles(t *testing.T) {
	abi := LandlockABI()
	if abi == 0 {
		t.Skip("this kernel has no Landlock (or it is not among its LSMs): nothing to test")
	}
	dir := t.TempDir()
	ok, denied := dir+"/ok", dir+"/denied"
	for _, p := range []string{ok, denied} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, ws := child(t, "landlock", "ALLOWED="+ok, "DENIED="+denied)
	want := fmt.Sprintf("abi %d\nallowed: <nil>\ndenied: open %s: permission denied\n", abi, denied)
	if ws.ExitStatus() != 0 || out != want {
		t.Errorf("a child confined to %s: %v, stdout %q, stderr %q; want stdout %q", ok, ws, out, errOut, want)
	}
}

// TestNeedStatic checks that a binary built with cgo, whose libc opens
// files once threads multiply, gets the clear refusal instead of a filter
// that would kill it later, and that -seccomp off still runs there.
func TestNeedStatic(t *testing.T) {
	tests := []struct {
		mode Mode
		cgo  bool
		want error
	}{
		{SeccompOn, true, errLibc},
		{SeccompLog, true, errLibc},
		{SeccompOff, true, nil},
		{SeccompOn, false, nil},
	}
	for _, tt := range tests {
		if got := needStatic(tt.mode, tt.cgo); got != tt.want {
			t.Errorf("needStatic(%v, cgo=%v) = %v, want %v", tt.mode, tt.cgo, got, tt.want)
		}
	}
}
