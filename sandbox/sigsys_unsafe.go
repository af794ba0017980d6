package sandbox

import (
	"fmt"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tables the SIGSYS handler (sigsys_amd64.s) reads: for each system
// call number below 512 (and one slot for the rest) a 128-byte slot
// holding a length byte and the start of the report line; then the line's
// end. They are filled before the filter is installed and only read after.
var (
	sigsysLines  [513][128]byte
	sigsysSuffix [256]byte
)

// The handler's and restorer's addresses, defined in sigsys_amd64.s.
var sigsysHandlerPC, sigsysRestorerPC uintptr

// sigsysTail ends every report line, after the call's first three
// arguments.
const sigsysTail = ": not on govmm's allow-list (govmm -print-seccomp prints it; -seccomp off runs without the filter); the VMM dies by SIGSYS\n"

// appendSigsysHead appends the start of the report line for system call
// nr to b. (strconv, not fmt: the table's 513 lines are made at every
// start, and fmt made them cost 0.2 ms.)
func appendSigsysHead(b []byte, nr int) []byte {
	b = append(b, DeniedPrefix...)
	if nr >= len(sigsysLines)-1 {
		return append(b, "numbered 512 or above, args"...)
	}
	name := "(unknown)"
	if nr < len(syscallNames) && syscallNames[nr] != "" {
		name = syscallNames[nr]
	}
	b = append(b, name...)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(nr), 10)
	return append(b, "), args"...)
}

// fillSlot puts s in slot with its length byte in front.
func fillSlot(slot, s []byte) error {
	if len(s) > len(slot)-1 || len(s) > 255 {
		return fmt.Errorf("seccomp: report text %q does not fit its %d-byte slot", s, len(slot))
	}
	slot[0] = byte(len(s))
	copy(slot[1:], s)
	return nil
}

// sigaction mirrors the kernel's struct sigaction on x86_64 (the
// rt_sigaction system call's, not glibc's).
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// The sa_flags the handler is installed with (<asm/signal.h>).
const (
	saSigInfo   = 0x4
	saOnStack   = 0x08000000
	saRestorer  = 0x04000000
	saNoDefer   = 0x40000000
	saResetHand = 0x80000000
)

// installSIGSYSHandler fills the report tables and makes the assembly
// handler SIGSYS's, replacing the Go runtime's (which would print a
// goroutine dump without the call's name). It runs on the signal stack
// Go gives every thread, with every other signal blocked, and resets
// SIGSYS to its default action on entry, so the signal it sends itself
// ends the process.
func installSIGSYSHandler() error {
	line := make([]byte, 0, 256)
	for nr := range sigsysLines {
		line = appendSigsysHead(line[:0], nr)
		if err := fillSlot(sigsysLines[nr][:], line); err != nil {
			return err
		}
	}
	if err := fillSlot(sigsysSuffix[:], []byte(sigsysTail)); err != nil {
		return err
	}
	sa := sigaction{
		handler:  sigsysHandlerPC,
		flags:    saSigInfo | saOnStack | saRestorer | saNoDefer | saResetHand,
		restorer: sigsysRestorerPC,
		mask:     ^uint64(0) &^ (1 << (unix.SIGSYS - 1)),
	}
	// Safe: sa lives on this goroutine's stack for the whole call; the
	// kernel copies it and keeps no pointer (the old action is not asked
	// for).
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSYS), uintptr(unsafe.Pointer(&sa)), 0, unsafe.Sizeof(sa.mask), 0, 0)
	if errno != 0 {
		return fmt.Errorf("seccomp: installing the SIGSYS handler: %w", errno)
	}
	return nil
}
