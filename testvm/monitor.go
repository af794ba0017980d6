package testvm

import (
	"fmt"
	"strings"
	"time"
)

// pokeKey is the key the watchdog presses to wake a frozen machine. A key
// press on the i8042 (q35 keeps it under -nodefaults; Debian's cloud kernel
// has i8042 and atkbd built in, so IRQ 1 is unmasked) makes QEMU's APIC
// look at its pending interrupts again and raise interrupt_request, the bit
// the race in periodicTickArgs' comment loses: once, a key press through
// the monitor woke a machine frozen that way. Shift alone types nothing,
// and the machine's console is a serial port anyway.
const pokeKey = "shift"

// stallReports are the monitor's commands whose output a StallError
// carries: every CPU's registers, and the local APIC of the first, where a
// lost timer interrupt shows as a vector pending in IRR with nothing in ISR.
var stallReports = []string{"info registers -a", "info lapic"}

// vectorRegisters start the lines of `info registers` left out of a
// StallError: x87 and SIMD registers, forty lines that say nothing about
// why a machine stalled.
var vectorRegisters = []string{"FPR", "XMM", "YMM", "ZMM", "Opmask"}

// withoutVectorRegisters drops the vectorRegisters lines from s.
func withoutVectorRegisters(s string) string {
	var keep []string
lines:
	for _, l := range strings.Split(s, "\n") {
		for _, p := range vectorRegisters {
			if strings.HasPrefix(l, p) {
				continue lines
			}
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// machineMonitor is what the watchdog asks of QEMU's monitor, a QMP unix
// socket at path. Each call makes its own connection, bounded by timeout,
// so that nothing stays open in the common case of a machine that never
// stalls.
type machineMonitor struct {
	path    string
	timeout time.Duration
}

// poke presses pokeKey.
func (m machineMonitor) poke() error {
	q, err := dialQMP(m.path, m.timeout)
	if err != nil {
		return err
	}
	defer q.Close()
	_, err = q.execute("send-key", sendKeyArgs(pokeKey))
	return err
}

// sendKeyArgs are QMP send-key's arguments for pressing keys together,
// named by QEMU's QKeyCode names.
func sendKeyArgs(keys ...string) any {
	type keyValue struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	var kv []keyValue
	for _, k := range keys {
		kv = append(kv, keyValue{"qcode", k})
	}
	return map[string]any{"keys": kv}
}

// report returns the output of stallReports, each under a heading, or
// why it could not be read.
func (m machineMonitor) report() string {
	q, err := dialQMP(m.path, m.timeout)
	if err != nil {
		return fmt.Sprintf("(QEMU's state could not be read: %v)", err)
	}
	defer q.Close()
	var b strings.Builder
	for _, cmd := range stallReports {
		out, err := q.hmp(cmd)
		if err != nil {
			out = fmt.Sprintf("(%v)", err)
		}
		out = withoutVectorRegisters(strings.ReplaceAll(out, "\r\n", "\n"))
		fmt.Fprintf(&b, "%s:\n%s\n", cmd, indent(strings.Trim(out, "\n")))
	}
	return strings.TrimRight(b.String(), "\n")
}
