package testvm

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// periodicTickArgs go on the emulated machine's kernel command line (QEMU's
// -append) when its QEMU is older than fixedQEMU; from 10.2 on they are
// dropped automatically.
//
// Why: a full Linux boot by govmm inside the emulated machine froze that
// machine in about half the runs. QEMU's state dumped from a frozen machine
// showed the emulated CPU's APIC holding the timer interrupt (vector 236)
// pending in IRR, nothing in service, IF=1 and GIF=1, yet QEMU's
// interrupt_request was 0, so nothing looked at the APIC again. The cause is
// a race in QEMU's TCG SVM emulation: helper_vmrun ORs CPU_INTERRUPT_VIRQ
// into interrupt_request on the vCPU thread without the lock while the APIC
// timer sets its bit from the main-loop thread, and one update wipes out
// the other. Upstream fixed it in QEMU 10.2 (commit 87511341c30d, and
// "cpu-common: use atomic access for interrupt_request"); Debian 12 has
// 7.2, and bookworm-backports' 10.0.2 still froze (1 run of 6, 1 of 4).
// idle=poll in the nested guest (3 of 8 froze), kvm_amd vgif=0 and clock or
// TSC settings did not help. With a periodic tick (nohz=off highres=off) a
// lost wakeup is repeated on the next tick: 40 of 40 full boots passed, in
// 6.8-7.4 s each instead of 15-17 s. The watchdog (watchdog.go) is the
// second guard, for whatever still freezes.
const periodicTickArgs = "nohz=off highres=off"

// fixedQEMU is the first QEMU release without the lost-wakeup race.
var fixedQEMU = version{10, 2, 0}

// version is a QEMU release: major, minor, micro.
type version [3]int

func (v version) less(w version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

// parseVersion reads "7.2.22" or "10.2"; a missing micro number is 0.
func parseVersion(s string) (version, bool) {
	var v version
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// needsPeriodicTick says whether a machine run by QEMU version v (as in
// Config.QEMUVersion) needs periodicTickArgs: an unknown or unreadable
// version counts as old. Development versions before 10.2's release
// (10.1.50, the 10.1.9x release candidates) count as old too.
func needsPeriodicTick(v string) bool {
	parsed, ok := parseVersion(v)
	return !ok || parsed.less(fixedQEMU)
}

// parseQEMUVersion finds the version in the output of `qemu-system-x86_64
// --version`: "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
// gives "7.2.22".
func parseQEMUVersion(out string) (string, error) {
	const lead = "QEMU emulator version "
	i := strings.Index(out, lead)
	if i < 0 {
		return "", fmt.Errorf("testvm: no %q in QEMU's --version output %q", lead, firstLine(out))
	}
	word, _, _ := strings.Cut(out[i+len(lead):], " ")
	word = strings.TrimSpace(word)
	if _, ok := parseVersion(word); !ok {
		return "", fmt.Errorf("testvm: QEMU's version %q is not major.minor.micro", word)
	}
	return word, nil
}

// queryQEMUVersion runs `qemu --version` and returns its version.
func queryQEMUVersion(ctx context.Context, qemu string) (string, error) {
	out, err := exec.CommandContext(ctx, qemu, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("testvm: %s --version: %w", qemu, err)
	}
	return parseQEMUVersion(string(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
