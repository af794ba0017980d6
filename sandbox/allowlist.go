package sandbox

import (
	"golang.org/x/sys/unix"
)

// This file is govmm's seccomp allow-list: every system call the VMM may
// make once its guest is set up, with the arguments it may make it with
// and who needs it. Everything else is denied (see Install). `govmm
// -print-seccomp` prints it.
//
// It was derived from what govmm really calls after machine.New (strace -f
// of the test guests in every mode, a terminal on stdin, file and none
// serial outputs, govmm exec's full Linux guest) and from the code paths
// that can run then: the vCPU loops and their fixups and crash reports,
// the serial writer goroutine, the console's raw mode, signal handling,
// and the Go runtime (threads, memory, timers, preemption). Setup (opening
// files, creating the VM, vCPUs and memory, the fast path's cache writes)
// happens before the filter and needs none of it.
//
// What future devices add here (and nothing else should):
//   - virtio with ioeventfd/irqfd: read and write on the eventfds, which
//     are already allowed (the fds are made at setup, before the filter),
//     and epoll_ctl, allowed; KVM_IOEVENTFD and KVM_IRQFD only if devices
//     are added or their BARs move while the guest runs (a PCI BAR
//     reprogrammed by the guest), so add them then.
//   - virtio-blk: preadv/pwritev, pwrite64, fdatasync and fallocate on
//     the disk images opened at setup (added below).
//   - TAP networking: read and writev on the TAP fd opened at setup, and
//     TUNSETOFFLOAD when the guest's driver starts (added below);
//     TUNSETIFF and TUNSETVNETHDRSZ are setup-time ioctls and stay out.
//   - a control API socket: accept4 on the listening socket made at setup,
//     then read/write/close (all allowed), recvmsg/sendmsg if fds are
//     passed; for snapshots, openat/ftruncate/fallocate on the snapshot
//     files, KVM_GET_CLOCK, KVM_GET_IRQCHIP, KVM_GET_PIT2 and
//     KVM_GET_DIRTY_LOG; for migration, KVM_SET_USER_MEMORY_REGION (to
//     turn dirty logging on) and socket I/O.
//   - a gdb stub: KVM_SET_GUEST_DEBUG.

// Rule allows one system call: always when Cases is empty, otherwise when
// the arguments match one of the cases. A rule with Errno set fails the
// call with that error instead, without running it.
type Rule struct {
	Syscall string // its name in the kernel's x86_64 table
	Why     string // who needs it
	Cases   []Case
	Errno   unix.Errno
}

// Case is one allowed way of making a call: every condition must hold.
type Case struct {
	Name  string // what it is, e.g. "KVM_RUN"
	Conds []Cond
}

// Cond compares one argument of the call (0-5) with a value.
type Cond struct {
	Arg   int
	Op    Op
	Value uint64
}

// Op is how a Cond compares.
type Op int

const (
	// Equal: the argument is Value.
	Equal Op = iota + 1
	// NotEqual: the argument is anything but Value.
	NotEqual
	// BitsSet: every bit of Value is set in the argument.
	BitsSet
	// BitsClear: no bit of Value is set in the argument.
	BitsClear
)

// ioctlCase allows an ioctl request number (argument 1).
func ioctlCase(name string, req uint64) Case {
	return Case{Name: name, Conds: []Cond{{Arg: 1, Op: Equal, Value: req}}}
}

// KVMRequests are the KVM ioctls govmm makes while the guest runs, with
// their C names; sandbox's tests check each number against <linux/kvm.h>.
// VM and vCPU creation, memory slots, CPUID, the TSS and identity-map
// addresses, the in-kernel irqchip and PIT are set up before the filter
// and stay out.
var KVMRequests = []Case{
	ioctlCase("KVM_RUN", 0xae80),                 // every vCPU's run loop; first, since it is the hot path
	ioctlCase("KVM_IRQ_LINE", 0x4008ae61),        // device interrupts (the serial port's IRQ 4)
	ioctlCase("KVM_GET_REGS", 0x8090ae81),        // PVM fixups, crash reports, vCPU state
	ioctlCase("KVM_SET_REGS", 0x4090ae82),        // PVM fixups (int3, fwait, ldmxcsr), vCPU state
	ioctlCase("KVM_GET_SREGS", 0x8138ae83),       // fixups decode in the guest's mode, crash reports
	ioctlCase("KVM_SET_SREGS", 0x4138ae84),       // vCPU state
	ioctlCase("KVM_GET_FPU", 0x81a0ae8c),         // the ldmxcsr/stmxcsr fixups, vCPU state
	ioctlCase("KVM_SET_FPU", 0x41a0ae8d),         // the ldmxcsr fixup, vCPU state
	ioctlCase("KVM_GET_XSAVE", 0x9000aea4),       // vCPU state
	ioctlCase("KVM_SET_XSAVE", 0x5000aea5),       // vCPU state
	ioctlCase("KVM_GET_LAPIC", 0x8400ae8e),       // vCPU state
	ioctlCase("KVM_SET_LAPIC", 0x4400ae8f),       // vCPU state
	ioctlCase("KVM_GET_VCPU_EVENTS", 0x8040ae9f), // the int3 fixup queues a #BP; vCPU state
	ioctlCase("KVM_SET_VCPU_EVENTS", 0x4040aea0), // the int3 fixup, the #GP of a reserved MXCSR bit
	ioctlCase("KVM_GET_MP_STATE", 0x8004ae98),    // vCPU state
	ioctlCase("KVM_SET_MP_STATE", 0x4004ae99),    // vCPU state
	ioctlCase("KVM_GET_MSRS", 0xc008ae88),        // vCPU state
	ioctlCase("KVM_SET_MSRS", 0x4008ae89),        // vCPU state
	ioctlCase("KVM_IOEVENTFD", 0x4040ae79),       // PCI BAR doorbells, (un)registered as the guest maps and moves BARs
	ioctlCase("KVM_SET_GSI_ROUTING", 0x4008ae6a), // MSI-X: a vector's route follows the message the guest unmasks
	ioctlCase("KVM_SIGNAL_MSI", 0x4020aea5),      // MSI-X where KVM has no irqfd routes
	ioctlCase("KVM_IRQFD", 0x4020ae76),           // MSI-X vectors' irqfds unbound when the PCI bus closes with the VM
}

// TerminalRequests are the terminal ioctls of the console (golang.org/x/term):
// reading the settings, and restoring them when the VM ends.
var TerminalRequests = []Case{
	ioctlCase("TCGETS", unix.TCGETS),
	ioctlCase("TCSETS", unix.TCSETS),
}

// NetRequests are the TAP ioctls virtio-net makes once the guest runs:
// the offloads follow the features the guest's driver accepts.
var NetRequests = []Case{
	ioctlCase("TUNSETOFFLOAD", 0x400454d0),
}

// Rules is the allow-list. pid is the VMM's own process ID: signals may go
// only to its own threads.
func Rules(pid int) []Rule {
	return []Rule{
		// The hot path first: the filter checks rules in order.
		{Syscall: "ioctl", Why: "KVM on the vCPU and VM fds; the console's terminal settings; a TAP's offloads", Cases: append(append(append([]Case{}, KVMRequests...), TerminalRequests...), NetRequests...)},
		{Syscall: "futex", Why: "Go runtime: goroutine scheduling, locks, channels"},
		{Syscall: "read", Why: "console input, Go runtime"},
		{Syscall: "pread64", Why: "Go runtime: sysmon rereads the cgroup's CPU quota (cpu.cfs_quota_us or cpu.max) through a file it keeps open, to adjust GOMAXPROCS"},
		{Syscall: "write", Why: "serial output (stdout or its file), the log on stderr, the SIGSYS report; virtio-net: frames to the TAP device"},
		{Syscall: "writev", Why: "virtio-net: a frame and its header to the TAP device in one call"},
		{Syscall: "preadv", Why: "virtio-blk: reads from the disk image straight into guest memory"},
		{Syscall: "pwritev", Why: "virtio-blk: writes to the disk image straight from guest memory"},
		{Syscall: "pwrite64", Why: "virtio-blk: WRITE_ZEROES where the file system can neither zero nor punch a range"},
		{Syscall: "fdatasync", Why: "virtio-blk: FLUSH, so that what the guest flushed is on the host's disk"},
		{Syscall: "fallocate", Why: "virtio-blk: DISCARD and WRITE_ZEROES punch holes (or zero ranges) in the disk image", Cases: []Case{
			{Name: "PUNCH_HOLE|KEEP_SIZE", Conds: []Cond{{Arg: 1, Op: Equal, Value: unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE}}},
			{Name: "ZERO_RANGE|KEEP_SIZE", Conds: []Cond{{Arg: 1, Op: Equal, Value: unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE}}},
		}},
		{Syscall: "epoll_pwait", Why: "Go runtime: the network poller (console input, deadlines)"},
		{Syscall: "epoll_ctl", Why: "Go runtime: adding and removing pollable fds"},
		{Syscall: "nanosleep", Why: "Go runtime: sysmon, spinning threads"},
		{Syscall: "sched_yield", Why: "Go runtime"},
		{Syscall: "tgkill", Why: "vCPU kicks (SIGURG to a vCPU thread), Go's preemption, the SIGSYS report", Cases: []Case{
			{Name: "own threads only", Conds: []Cond{{Arg: 0, Op: Equal, Value: uint64(pid)}}},
		}},
		{Syscall: "getpid", Why: "vCPU kicks (tgkill's first argument), Go runtime"},
		{Syscall: "gettid", Why: "vCPU threads record their thread ID for kicks, Go runtime"},
		{Syscall: "rt_sigreturn", Why: "the return from every signal handler"},
		{Syscall: "rt_sigprocmask", Why: "Go runtime: new threads, signal delivery"},
		{Syscall: "rt_sigaction", Why: "os/signal stops watching SIGINT and SIGTERM at exit; never SIGSYS, whose handler reports denied calls", Cases: []Case{
			{Name: "any signal but SIGSYS", Conds: []Cond{{Arg: 0, Op: NotEqual, Value: uint64(unix.SIGSYS)}}},
		}},
		{Syscall: "sigaltstack", Why: "Go runtime: every new thread's signal stack"},
		{Syscall: "restart_syscall", Why: "the kernel restarts a call a signal interrupted"},
		{Syscall: "clone", Why: "Go runtime: new threads (and only threads: CLONE_THREAD must be set, so no fork)", Cases: []Case{
			{Name: "a thread", Conds: []Cond{{Arg: 0, Op: BitsSet, Value: unix.CLONE_THREAD}}},
		}},
		{Syscall: "arch_prctl", Why: "Go runtime: a new thread's TLS", Cases: []Case{
			{Name: "ARCH_SET_FS", Conds: []Cond{{Arg: 0, Op: Equal, Value: 0x1002}}},
		}},
		{Syscall: "mmap", Why: "Go runtime: heap and thread stacks; never executable memory", Cases: []Case{
			{Name: "not PROT_EXEC", Conds: []Cond{{Arg: 2, Op: BitsClear, Value: unix.PROT_EXEC}}},
		}},
		{Syscall: "mprotect", Why: "a cgo build's thread stacks (glibc's guard pages); never executable memory", Cases: []Case{
			{Name: "not PROT_EXEC", Conds: []Cond{{Arg: 2, Op: BitsClear, Value: unix.PROT_EXEC}}},
		}},
		{Syscall: "munmap", Why: "Go runtime; guest RAM and the vCPUs' run pages at exit"},
		{Syscall: "madvise", Why: "Go runtime: returning memory"},
		{Syscall: "eventfd2", Why: "PCI BAR doorbells: an ioeventfd for each one, made when the guest turns a BAR's decoding on"},
		{Syscall: "close", Why: "closing the console's input, the VM's fds at exit"},
		{Syscall: "fcntl", Why: "os.File switching the console's input between blocking and non-blocking", Cases: []Case{
			{Name: "F_GETFL", Conds: []Cond{{Arg: 1, Op: Equal, Value: unix.F_GETFL}}},
			{Name: "F_SETFL", Conds: []Cond{{Arg: 1, Op: Equal, Value: unix.F_SETFL}}},
		}},
		{Syscall: "clock_gettime", Why: "time, where the vDSO falls back to the system call"},
		{Syscall: "getrandom", Why: "Go runtime: map seeds, crypto/rand"},
		{Syscall: "exit", Why: "Go runtime: a thread ends"},
		{Syscall: "rseq", Why: "a cgo build: glibc registers each new thread"},
		{Syscall: "sched_getaffinity", Why: "Go runtime: sysmon rechecks the CPUs it may use, to adjust GOMAXPROCS; a cgo build's glibc sizes new threads by it"},
		{Syscall: "set_robust_list", Why: "a cgo build: glibc sets up each new thread"},
		{Syscall: "clone3", Why: "a cgo build: glibc tries clone3 first, and falls back to clone (whose flags the filter can check) on ENOSYS", Errno: unix.ENOSYS},
		{Syscall: "exit_group", Why: "govmm exits with the guest's status"},
	}
}

// UserNetworkRules are added to the filter when a guest has user-mode
// networking (virtio-net user): its netstack makes the guest's TCP and
// UDP connections, its DNS queries to the host's name server, and
// listens for port forwards, all with host sockets. It opens no files
// once running: the name server is read from /etc/resolv.conf at setup.
func UserNetworkRules() []Rule {
	const why = "-net user: the netstack's host sockets (NAT, port forwards)"
	net := []string{"socket", "connect", "bind", "listen", "accept4", "setsockopt", "getsockopt", "getsockname", "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "shutdown"}
	var out []Rule
	for _, c := range net {
		out = append(out, Rule{Syscall: c, Why: why})
	}
	return out
}

// MobilityRequests are the KVM ioctls that pausing, snapshots and
// migration add to KVMRequests: the VM's clock, interrupt controllers and
// PIT, the vCPU state KVMRequests lacks, and dirty-page logging.
var MobilityRequests = []Case{
	ioctlCase("KVM_GET_CLOCK", 0x8030ae7c),              // a pause reads the kvmclock...
	ioctlCase("KVM_SET_CLOCK", 0x4030ae7b),              // ...and Resume sets it back
	ioctlCase("KVM_KVMCLOCK_CTRL", 0xaead),              // tells the guest it was paused
	ioctlCase("KVM_GET_DEVICE_ATTR", 0x4018aee2),        // a vCPU's TSC offset, which Resume moves back by the pause
	ioctlCase("KVM_SET_DEVICE_ATTR", 0x4018aee1),        // (KVM_VCPU_TSC_OFFSET)
	ioctlCase("KVM_GET_IRQCHIP", 0xc208ae62),            // the PICs and IOAPIC in a State
	ioctlCase("KVM_GET_PIT2", 0x8070ae9f),               // the in-kernel PIT in a State
	ioctlCase("KVM_GET_XCRS", 0x8188aea6),               // vCPU state
	ioctlCase("KVM_GET_DEBUGREGS", 0x8080aea1),          // vCPU state
	ioctlCase("KVM_GET_TSC_KHZ", 0xaea3),                // vCPU state
	ioctlCase("KVM_GET_CPUID2", 0xc008ae91),             // vCPU state
	ioctlCase("KVM_GET_DIRTY_LOG", 0x4010ae42),          // migration rounds, diff snapshots
	ioctlCase("KVM_SET_USER_MEMORY_REGION", 0x4020ae46), // turning dirty logging on and off on the RAM slots
}

// MobilityRules are added to the filter when govmm serves the control API
// (-api): its socket, snapshots into the -snapshot-dir folders (Landlock
// confines which), and migrations out over TCP.
func MobilityRules() []Rule {
	const api = "-api: the control API's connections"
	const snap = "-api: writing a snapshot's files (Landlock keeps them to -snapshot-dir)"
	const mig = "-api: a migration's TCP connection to the destination"
	return []Rule{
		{Syscall: "ioctl", Why: "-api: pause, state, dirty logging", Cases: MobilityRequests},
		{Syscall: "accept4", Why: api},
		{Syscall: "getsockname", Why: api + "; " + mig},
		{Syscall: "getpeername", Why: mig},
		{Syscall: "shutdown", Why: api},
		{Syscall: "socket", Why: mig + " (IPv4 or IPv6 only)", Cases: []Case{
			{Name: "AF_INET", Conds: []Cond{{Arg: 0, Op: Equal, Value: unix.AF_INET}}},
			{Name: "AF_INET6", Conds: []Cond{{Arg: 0, Op: Equal, Value: unix.AF_INET6}}},
		}},
		{Syscall: "connect", Why: mig},
		{Syscall: "setsockopt", Why: mig + ": Go sets TCP_NODELAY and keep-alives"},
		{Syscall: "getsockopt", Why: mig + ": SO_ERROR when the connection is made"},
		{Syscall: "openat", Why: snap},
		{Syscall: "mkdirat", Why: snap},
		{Syscall: "newfstatat", Why: snap},
		{Syscall: "fstat", Why: snap},
		{Syscall: "ftruncate", Why: snap + ": the memory file's length, sparse"},
		{Syscall: "pwrite64", Why: snap + ": the memory file's pages"},
		{Syscall: "fsync", Why: snap + ": each file and the folder, before the state file is renamed in"},
		{Syscall: "renameat", Why: snap + ": the state file into place"},
		{Syscall: "unlinkat", Why: snap + ": the memory file of the snapshot replaced"},
		{Syscall: "getdents64", Why: snap + ": finding that memory file"},
		{Syscall: "lseek", Why: "-api: SEEK_DATA finds the pages of guest RAM's memfd that hold data"},
	}
}
