package testvm

import (
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// saveTerminal records the modes of f, QEMU's standard input in an
// interactive run, and returns a function that puts them back. QEMU sets
// its standard input non-blocking and, on a terminal, raw; it undoes both
// when it exits, but not when it is killed (a timeout, a cancelled run),
// and a shell left with a raw or non-blocking terminal is unusable.
func saveTerminal(f *os.File) (restore func()) {
	fd := int(f.Fd())
	flags, flagsErr := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	state, termErr := term.GetState(fd) // fails where f is no terminal
	return func() {
		if termErr == nil {
			_ = term.Restore(fd, state)
		}
		if flagsErr == nil {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
		}
	}
}
