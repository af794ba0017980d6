// Command agent is govmm's guest agent. u-root's init starts it as
// /bin/uinit in the default initrd (see images.BuildInitrd). It
//
//  1. prints GOVMM-AGENT-READY on its own line to the console;
//  2. loads the kernel modules listed in /lib/modules/<release>/modules.dep,
//     each after those it depends on, printing one line per module
//     ("GOVMM-AGENT-MODULE virtio_net ok", "... FAILED: <why>"), going on
//     past failures;
//  3. if the kernel command line has govmm.cmd=<base64url of a shell
//     command>, runs that command with /bin/sh -c and prints
//     "GOVMM-AGENT-EXIT <status>"; then, if the command line also has
//     govmm.shell=1, starts an interactive shell on the console;
//     with no govmm.cmd, it starts the interactive shell;
//  4. syncs and powers the machine off.
//
// govmm.cmd is base64 with the URL alphabet (RFC 4648 section 5), padding
// optional, so any command (spaces, quotes, newlines) fits in one kernel
// parameter; images.AgentCommandLine makes it.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Markers a host reads off the serial console.
const (
	readyMarker = "GOVMM-AGENT-READY"
	exitMarker  = "GOVMM-AGENT-EXIT"
)

func main() {
	if os.Getppid() != 1 {
		fmt.Fprintln(os.Stderr, "govmm agent: not started by init; it powers the machine off, so it only runs as the guest's uinit")
		os.Exit(2)
	}
	// Talk to the console itself rather than through whatever standard
	// output init gave: everything written to it is on the serial line
	// (or queued there) before the VM ends.
	con := os.Stdout
	if f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0); err == nil {
		con = f
		logKernel("stdout is %s; using /dev/console", fdTarget(1))
	}
	run(con, con)
	powerOff(con)
}

// fdTarget names what a file descriptor of this process is open on.
func fdTarget(fd int) string {
	t, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err.Error()
	}
	return t
}

// run does everything but the power-off. Commands and the shell get con as
// their terminal.
func run(out io.Writer, con *os.File) {
	fmt.Fprintln(out, readyMarker)

	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		fmt.Fprintf(out, "govmm agent: uname: %v; no kernel modules loaded\n", err)
	} else {
		release := unix.ByteSliceToString(uts.Release[:])
		loadModules(out, "/lib/modules/"+release, initModule)
	}

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(out, "govmm agent: read kernel command line: %v\n", err)
	}
	cfg, err := parseConfig(string(cmdline))
	if err != nil {
		fmt.Fprintf(out, "govmm agent: %v\n", err)
		fmt.Fprintf(out, "%s %d\n", exitMarker, statusBadCommandLine)
		return
	}
	if cfg.Cmd != "" {
		status := runCommand(cfg.Cmd, con, out)
		fmt.Fprintf(out, "%s %d\n", exitMarker, status)
		if !cfg.Shell {
			return
		}
	}
	shell := exec.Command("/bin/sh")
	shell.Stdin, shell.Stdout, shell.Stderr = con, con, con
	if err := shell.Run(); err != nil {
		fmt.Fprintf(out, "govmm agent: shell: %v\n", err)
	}
}

// Statuses the agent reports itself, as shells do.
const (
	statusBadCommandLine = 2
	statusCannotRun      = 127
)

// runCommand runs cmd through the shell on the console and returns its exit
// status: 128+n if signal n killed it, 127 if it could not start.
func runCommand(cmd string, con *os.File, out io.Writer) int {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Stdin, c.Stdout, c.Stderr = con, con, con
	err := c.Run()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintf(out, "govmm agent: run /bin/sh: %v\n", err)
	return statusCannotRun
}

func initModule(image []byte) error {
	return unix.InitModule(image, "")
}

// powerOff ends the VM. govmm gives the guest no ACPI tables, so Linux has
// no way to power off: reboot(POWER_OFF) would halt the CPU for ever. A
// restart goes through the i8042 reset line (the kernel command line's
// reboot=k), and govmm ends the VM, with status 0, when the guest resets.
func powerOff(out *os.File) {
	unix.Sync()
	fmt.Fprintln(out, "govmm agent: ending the VM (reset)")
	// The serial driver sends what was written a byte at a time; a reset
	// now would drop the rest. Wait until the console has sent it all.
	drainConsole(out)
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Fprintf(out, "govmm agent: reset: %v\n", err)
	}
}

// drainConsole waits, for at most drainLimit, until the console's output
// queue is empty, and says in the kernel log if it is not.
func drainConsole(con *os.File) {
	start := time.Now()
	for {
		n, err := unix.IoctlGetInt(int(con.Fd()), unix.TIOCOUTQ)
		if err != nil {
			logKernel("TIOCOUTQ on %s: %v", con.Name(), err)
			return
		}
		if n == 0 {
			logKernel("console drained after %v", time.Since(start))
			return
		}
		if time.Since(start) > drainLimit {
			logKernel("console still has %d bytes queued after %v; ending anyway", n, drainLimit)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logKernel writes a line to the kernel log, which reaches the console
// synchronously.
func logKernel(format string, a ...any) {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "govmm agent: "+format+"\n", a...)
}

// drainLimit bounds how long the agent waits for the console.
const drainLimit = 10 * time.Second
