package main

import (
	"fmt"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// endVM ends the VM. With an exit device (exitMMIO, the guest-physical
// address of the debug-exit device's status register), it writes status
// there and govmm exits with it; if that write fails, it resets (through
// the i8042 reset line, the kernel command line's reboot=k), and govmm
// exec takes the status from the exit marker. Without one (after an
// interactive shell) it powers off through ACPI S5, which ends govmm with
// status 0; with no ACPI tables, where reboot(POWER_OFF) would halt the
// CPUs for ever, it resets.
//
// Either way it first syncs and waits for the console to send everything:
// the serial driver sends what was written a byte at a time, and ending
// the VM now would drop the rest.
func endVM(con *os.File, exitMMIO uint64, status int) {
	unix.Sync()
	if exitMMIO != 0 {
		say(con, "ending the VM with status %d through the debug-exit device at %#x", status, exitMMIO)
		drainConsole(con)
		err := writeMMIO(exitMMIO, byte(status))
		say(con, "could not end the VM through the debug-exit device at %#x: %v; resetting instead (govmm then takes the status from the exit marker)", exitMMIO, err)
	} else if canPowerOff() {
		say(con, "powering the VM off (ACPI S5)")
		drainConsole(con)
		err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		say(con, "power off: %v; resetting instead", err)
	} else {
		say(con, "ending the VM (reset): there are no ACPI tables, so Linux cannot power off")
	}
	drainConsole(con)
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		say(con, "reset: %v", err)
	}
}

// writeMMIO writes v to the guest-physical address addr through /dev/mem
// (the kernel allows it at an address that is neither RAM nor claimed by
// a driver, as the debug-exit device's is). When the write reaches the
// device, the VM ends and writeMMIO never returns; it returns an error
// otherwise.
func writeMMIO(addr uint64, v byte) error {
	page := uint64(os.Getpagesize())
	base := addr &^ (page - 1)
	if base > math.MaxInt64 {
		return fmt.Errorf("address %#x is beyond what /dev/mem can map", addr)
	}
	f, err := os.OpenFile("/dev/mem", os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), int64(base), int(page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap /dev/mem at %#x: %w", base, err)
	}
	m[addr-base] = v
	if err := unix.Munmap(m); err != nil {
		return fmt.Errorf("wrote %#x but the VM goes on; munmap: %w", addr, err)
	}
	return fmt.Errorf("wrote %#x but the VM goes on: no debug-exit device there", addr)
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

// drainLimit bounds how long the agent waits for the console.
const drainLimit = 10 * time.Second

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
