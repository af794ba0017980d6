// Command agent is govmm's guest agent. u-root's init starts it as
// /bin/uinit in the default initrd (see images.BuildInitrd). It
//
//  1. prints GOVMM-AGENT-READY on its own line to the console;
//  2. loads the kernel modules listed in /lib/modules/<release>/modules.dep,
//     each after those it depends on, printing one line per module
//     ("GOVMM-AGENT-MODULE virtio_net ok", "... FAILED: <why>"), going on
//     past failures; then watches the ACPI power button (button.ko's
//     input device, through evdev.ko) and powers off when it is pressed;
//  3. if the kernel command line has govmm.cmd=<base64url of a shell
//     command>, prints the GOVMM-AGENT-START line, runs that command with
//     /bin/sh -c (its standard input is /dev/null, its output the console,
//     which passes its bytes as they are), and prints
//     "\x1eGOVMM-AGENT-EXIT <status>"; then, if the command line also has
//     govmm.shell=1, starts an interactive shell on the console;
//     with no govmm.cmd, it starts the interactive shell;
//  4. syncs, waits for the console to send everything, and ends the VM:
//     with govmm.exit=mmio:0xADDR, by writing the command's status (0
//     without a command) to the debug-exit device there, so govmm exits
//     with it; otherwise, or if that write fails, with a reset.
//
// The parameters, markers and their formats are in package agentproto,
// which govmm uses too.
package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/images/agentproto"
)

func main() {
	if os.Getppid() != 1 {
		fmt.Fprintln(os.Stderr, "govmm agent: not started by init; it ends the machine, so it only runs as the guest's uinit")
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
	cfg, status := run(con)
	endVM(con, cfg.ExitMMIO, status)
}

// fdTarget names what a file descriptor of this process is open on.
func fdTarget(fd int) string {
	t, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return err.Error()
	}
	return t
}

// Statuses the agent reports itself, as shells do.
const (
	statusBadCommandLine = 2
	statusCannotRun      = 127
)

// run does everything before the end: it returns the configuration read
// from the kernel command line and the status to end the VM with.
func run(con *os.File) (agentproto.Config, int) {
	fmt.Fprintln(con, agentproto.Ready)

	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		fmt.Fprintf(con, "govmm agent: uname: %v; no kernel modules loaded\n", err)
	} else {
		release := unix.ByteSliceToString(uts.Release[:])
		loadModules(con, "/lib/modules/"+release, initModule)
	}
	// The button's input device and its event handler exist only once
	// button.ko and evdev.ko are in: watch it after the modules load.
	watchPowerButton(con)

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(con, "govmm agent: read kernel command line: %v\n", err)
	}
	cfg, err := agentproto.Parse(string(cmdline))
	if err != nil {
		fmt.Fprintf(con, "govmm agent: %v\n", err)
		fmt.Fprint(con, agentproto.ExitLine(statusBadCommandLine))
		return agentproto.Config{}, statusBadCommandLine
	}
	status := 0
	if cfg.Cmd != "" {
		status = runCommand(cfg, con)
		if !cfg.Shell {
			return cfg, status
		}
	}
	shell := exec.Command("/bin/sh")
	shell.Stdin, shell.Stdout, shell.Stderr = con, con, con
	if err := shell.Run(); err != nil {
		fmt.Fprintf(con, "govmm agent: shell: %v\n", err)
	}
	return cfg, status
}

func initModule(image []byte) error {
	return unix.InitModule(image, "")
}

// say writes an agent message line to w.
func say(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "govmm agent: "+format+"\n", a...)
}
