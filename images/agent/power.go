package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The ACPI power button, as Linux hands it to user space: its button
// driver (button.ko, which the initrd carries) turns the fixed-feature
// power-button event into a key press, KEY_POWER, on an input device
// named "Power Button", which evdev (evdev.ko) offers as
// /dev/input/eventN. On a desktop systemd-logind reads it and powers
// off; here the agent does. govmm presses the button when it gets SIGTERM.

// Input event constants (linux/input-event-codes.h).
const (
	evKey      = 0x01
	keyPower   = 116
	keyPressed = 1
	// inputEventSize is struct input_event on 64-bit Linux: a struct
	// timeval (16 bytes), then type and code (u16 each) and value (s32).
	inputEventSize = 24
)

// powerButtonDevice finds the power button's event handler ("event3") in
// /proc/bus/input/devices' text: blocks of lines, one per device, with
// "N: Name=..." and "H: Handlers=...".
func powerButtonDevice(devices string) (string, bool) {
	for _, block := range strings.Split(devices, "\n\n") {
		if !strings.Contains(block, `N: Name="Power Button"`) {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			handlers, ok := strings.CutPrefix(line, "H: Handlers=")
			if !ok {
				continue
			}
			for _, h := range strings.Fields(handlers) {
				if strings.HasPrefix(h, "event") {
					return h, true
				}
			}
		}
	}
	return "", false
}

// openEventDevice opens /dev/input/<name>, making the node from sysfs'
// major:minor when devtmpfs has not.
func openEventDevice(name string) (*os.File, error) {
	path := filepath.Join("/dev/input", name)
	if _, err := os.Stat(path); err != nil {
		dev, err := os.ReadFile(filepath.Join("/sys/class/input", name, "dev"))
		if err != nil {
			return nil, err
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(dev)), "%d:%d", &major, &minor); err != nil {
			return nil, fmt.Errorf("%s's dev %q: %w", name, dev, err)
		}
		if err := os.MkdirAll("/dev/input", 0o755); err != nil {
			return nil, err
		}
		if err := unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil {
			return nil, fmt.Errorf("mknod %s: %w", path, err)
		}
	}
	return os.Open(path)
}

// waitPowerKey reads input events from r until a press of KEY_POWER.
func waitPowerKey(r io.Reader) error {
	br := bufio.NewReader(r)
	var ev [inputEventSize]byte
	for {
		if _, err := io.ReadFull(br, ev[:]); err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint16(ev[16:])
		code := binary.LittleEndian.Uint16(ev[18:])
		value := int32(binary.LittleEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == keyPressed {
			return nil
		}
	}
}

// watchPowerButton waits, in the background, for the power button and
// then syncs and powers the guest off. It says on con when there is no
// button to watch.
func watchPowerButton(con *os.File) {
	devices, err := os.ReadFile("/proc/bus/input/devices")
	name, ok := powerButtonDevice(string(devices))
	if err != nil || !ok {
		say(con, "no ACPI power button to watch (is button.ko loaded?): %v", err)
		return
	}
	f, err := openEventDevice(name)
	if err != nil {
		say(con, "cannot watch the power button (%s): %v", name, err)
		return
	}
	go func() {
		defer f.Close()
		if err := waitPowerKey(f); err != nil {
			say(con, "watching the power button: %v", err)
			return
		}
		say(con, "power button pressed: powering off")
		unix.Sync()
		drainConsole(con)
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
			say(con, "power off: %v", err)
		}
	}()
}

// canPowerOff reports whether Linux can power this machine off: it can
// through ACPI S5 when the firmware gave it ACPI tables (govmm does); with
// none, reboot(POWER_OFF) would only halt the CPUs.
func canPowerOff() bool {
	_, err := os.Stat("/sys/firmware/acpi/tables/FACP")
	return err == nil
}
