package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/agentproto"
)

// runCommand runs cfg.Cmd through the shell with the console as its output
// and /dev/null as its input, between the Start line and the Exit marker,
// and returns its exit status: 128+n if signal n killed it, 127 if it could
// not start. While it runs the console passes bytes as they are (no \r
// before each \n) and, with cfg.Quiet, the kernel prints only emergencies
// there.
func runCommand(cfg agentproto.Config, con *os.File) int {
	if cfg.Quiet {
		restore, err := consoleLogLevel(1)
		if err != nil {
			say(con, "kernel messages may mix with the command's output: %v", err)
		} else {
			defer restoreWith(con, "the console log level", restore)
		}
	}
	restore, err := rawOutput(con)
	if err != nil {
		say(con, "the command's newlines will reach the host as \\r\\n: %v", err)
	} else {
		defer restoreWith(con, "the console's output mode", restore)
	}

	fmt.Fprint(con, agentproto.StartLine())
	c := exec.Command("/bin/sh", "-c", cfg.Cmd)
	c.Stdout, c.Stderr = con, con // Stdin nil: /dev/null
	status := commandStatus(c.Run(), con)
	fmt.Fprint(con, agentproto.ExitLine(status))
	return status
}

// commandStatus turns what exec.Cmd.Run returned into a shell's status.
func commandStatus(err error, con *os.File) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	say(con, "run /bin/sh: %v", err)
	return statusCannotRun
}

// restoreWith runs restore and says on con if it fails.
func restoreWith(con *os.File, what string, restore func() error) {
	if err := restore(); err != nil {
		say(con, "restoring %s: %v", what, err)
	}
}

// rawOutput turns off the console's output processing (OPOST, and with it
// ONLCR's \n to \r\n), so the command's bytes reach the host as they are.
// It returns the function that turns it back on.
func rawOutput(con *os.File) (func() error, error) {
	fd := int(con.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("TCGETS on %s: %w", con.Name(), err)
	}
	raw := *old
	raw.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("TCSETS on %s: %w", con.Name(), err)
	}
	return func() error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// printkFile holds the kernel's console log level as its first number
// (proc(5)): messages below it reach the console.
const printkFile = "/proc/sys/kernel/printk"

// consoleLogLevel sets the console log level to level and returns the
// function that puts the old one back.
func consoleLogLevel(level int) (func() error, error) {
	b, err := os.ReadFile(printkFile)
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return nil, fmt.Errorf("%s is empty", printkFile)
	}
	old := fields[0]
	if err := os.WriteFile(printkFile, []byte(strconv.Itoa(level)), 0); err != nil {
		return nil, err
	}
	return func() error { return os.WriteFile(printkFile, []byte(old), 0) }, nil
}
