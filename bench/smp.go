package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/govmm/govmm/kvm"
)

// smpCPUs are the vCPU counts of the start-up rows (issue 5: 1, 4, 32).
var smpCPUs = []int{1, 4, 32}

// smpAPCPUs is the machine of the AP bring-up row: QEMU's -smp 4, the
// boot CPU and three APs.
const smpAPCPUs = 4

// smpRows (-only smp): what more vCPUs cost a VM before its first
// instruction, and how long the test guest takes to start its APs.
//
//   - VMM start -> first KVM_RUN with -cpus N: govmm's own clock, from its
//     -v line "starting N vCPU(s) X after start" (the ACPI tables are
//     built and written, and the N vCPUs created, given their CPUID and
//     registers, in the "setup" step of the line before it, named in the
//     notes); peer cvmm, one vCPU and no tables: the floor.
//   - exec -> the guest's first serial line with N vCPUs: govmm against
//     QEMU -M q35 -enable-kvm -smp N on the same guest.elf (QEMU boots it
//     through its PVH note after its firmware, which starts and parks
//     the APs itself).
//   - the test guest's mode=acpi with 4 vCPUs: it finds the RSDP, walks
//     the MADT, starts each AP with INIT-SIPI-SIPI and waits for it to
//     print "ap <APIC ID> up" before the next; timed by its serial lines
//     "bsp 0 up" and "smp ok cpus=4", the same on either VMM.
//
// Above KVM_CAP_MAX_VCPUS a row says so instead.
func (s *suite) smpRows(ctx context.Context) []row {
	if !s.wants("smp") {
		return nil
	}
	maxVCPUs, limits := smpLimits()
	qemuWhy := s.qemuWhy
	if s.qemu == nil && qemuWhy == "" {
		qemuWhy = "n/a"
	}
	var rows []row

	// cvmm: the floor, one vCPU, measured once for all N.
	s.progress("smp: %d runs of cvmm -v (+1 warm-up)", s.runs)
	want := "ring3 ok sum="
	var cvmmStart []time.Duration
	var cvmmErr error
	for i := 0; i <= s.runs && cvmmErr == nil; i++ {
		r, err := runOnce(ctx, s.cvmm, bootCmdline, true, s.timeout, want)
		if err != nil {
			cvmmErr = err
			break
		}
		if v, ok := parsePhases(r.stderr)[keyStart]; ok && i > 0 {
			cvmmStart = append(cvmmStart, time.Duration(v*float64(time.Millisecond)))
		}
	}
	if cvmmErr == nil && len(cvmmStart) == 0 {
		cvmmErr = errors.New("cvmm -v printed no \"starting 1 vCPU(s)\" line")
	}
	cvmmCell := s.medianCell(cvmmStart, cvmmErr)

	var firstLine []row
	for _, n := range smpCPUs {
		startName := fmt.Sprintf("VMM start -> first KVM_RUN, %d vCPU(s) (ACPI tables, vCPUs)", n)
		lineName := fmt.Sprintf("exec -> guest's first serial line, %d vCPU(s)", n)
		if n > maxVCPUs {
			why := missing(fmt.Sprintf("n/a (%s)", limits))
			rows = append(rows, row{Name: startName, Govmm: why, Peer: cvmmCell, Unit: "ms"})
			firstLine = append(firstLine, row{Name: lineName, Govmm: why, Peer: why, Unit: "ms"})
			continue
		}
		s.progress("smp: %d runs each of govmm -cpus %d and qemu -M q35 -smp %d (+1 warm-up)", s.runs, n, n)
		g := smpGovmm(s.govmm, n)
		var start, setup, gLine, qLine []time.Duration
		var gErr, qErr error
		for i := 0; i <= s.runs; i++ {
			if gErr == nil {
				t, err := runLines(ctx, g, 0, bootCmdline, []string{"testguest: boot="}, want, s.timeout)
				switch {
				case err != nil:
					gErr = err
				case i > 0:
					p := parsePhases(t.stderr)
					v, ok := p[keyStart]
					if !ok {
						gErr = fmt.Errorf("govmm -cpus %d -v printed no \"starting %d vCPU(s)\" line:\n%s", n, n, tail(t.stderr))
						break
					}
					start = append(start, time.Duration(v*float64(time.Millisecond)))
					setup = append(setup, time.Duration(p["setup"]*float64(time.Millisecond)))
					gLine = append(gLine, t.at[0])
				}
			}
			if s.qemu != nil && qErr == nil {
				t, err := runLines(ctx, smpQEMU(s.qemu, n), 1, bootCmdline, []string{"testguest: boot="}, want, s.timeout)
				switch {
				case err != nil:
					qErr = err
				case i > 0:
					qLine = append(qLine, t.at[0])
				}
			}
		}
		note := "peer cvmm (1 vCPU, no ACPI tables); each VMM's -v line; govmm's clock starts after Go runtime init and flag parsing"
		if gErr == nil && len(setup) > 0 {
			note += fmt.Sprintf("; govmm's setup step (devices, ACPI tables, kernel, vCPUs, CPUID) %.2f ms", durationMS(median(setup)))
		}
		if n == smpCPUs[len(smpCPUs)-1] && limits != "" {
			note += "; " + limits
		}
		rows = append(rows, row{Name: startName, Govmm: s.medianCell(start, gErr), Peer: cvmmCell, Unit: "ms", Notes: note})
		q := missing(qemuWhy)
		if s.qemu != nil {
			q = s.medianCell(qLine, qErr)
		}
		firstLine = append(firstLine, row{Name: lineName, Govmm: s.medianCell(gLine, gErr), Peer: q, Unit: "ms",
			Notes: fmt.Sprintf("peer QEMU -M q35 -enable-kvm -smp %d (firmware, then the PVH entry); %s", n, bootCmdline)})
	}
	rows = append(rows, firstLine...)
	return append(rows, s.apRow(ctx, qemuWhy, maxVCPUs, limits))
}

// apRow: the test guest's mode=acpi starting the APs of a 4-vCPU machine.
func (s *suite) apRow(ctx context.Context, qemuWhy string, maxVCPUs int, limits string) row {
	const n = smpAPCPUs
	r := row{Name: fmt.Sprintf("test guest starts %d APs (INIT-SIPI-SIPI, each prints its APIC ID), %d vCPUs", n-1, n), Unit: "ms",
		Notes: fmt.Sprintf("mode=acpi, \"bsp 0 up\" -> \"smp ok cpus=%d\" on the serial port; peer QEMU -M q35 -enable-kvm -smp %d; median of %d", n, n, s.runs)}
	if n > maxVCPUs {
		r.Govmm, r.Peer = missing("n/a ("+limits+")"), missing("n/a ("+limits+")")
		return r
	}
	cmdline := fmt.Sprintf("mode=acpi expect_cpus=%d", n)
	lines := []string{"bsp ", fmt.Sprintf("smp ok cpus=%d", n)}
	s.progress("smp: %d runs each of govmm -cpus %d and qemu -M q35 -smp %d, %s (+1 warm-up)", s.runs, n, n, cmdline)
	var g, q []time.Duration
	var gErr, qErr error
	qemuNA := ""
	for i := 0; i <= s.runs; i++ {
		if gErr == nil {
			t, err := runLines(ctx, smpGovmm(s.govmm, n), 0, cmdline, lines, lines[1], s.timeout)
			if err != nil {
				gErr = err
			} else if i > 0 {
				g = append(g, t.at[1]-t.at[0])
			}
		}
		if s.qemu != nil && qErr == nil && qemuNA == "" {
			t, err := runLines(ctx, smpQEMU(s.qemu, n), 1, cmdline, lines, lines[1], s.timeout)
			switch {
			case err != nil && strings.Contains(t.stdout, "CHECK FAILED: acpi: "):
				// The test guest's ACPI reader failed on what QEMU
				// gave it (under PVH it reads rsdp_paddr and takes
				// QEMU 7.2's ACPI 1.0 RSDP with an RSDT): say why.
				_, why, _ := strings.Cut(t.stdout, "CHECK FAILED: ")
				why, _, _ = strings.Cut(why, "\n")
				qemuNA = "n/a (the test guest under QEMU's PVH entry: " + strings.TrimSpace(why) + ")"
			case err != nil:
				qErr = err
			case i > 0:
				q = append(q, t.at[1]-t.at[0])
			}
		}
	}
	r.Govmm = s.medianCell(g, gErr)
	switch {
	case s.qemu == nil:
		r.Peer = missing(qemuWhy)
	case qemuNA != "":
		r.Peer = missing(qemuNA)
	default:
		r.Peer = s.medianCell(q, qErr)
	}
	return r
}

// smpLimits returns KVM_CAP_MAX_VCPUS (a very large number when it
// cannot be read: govmm then says why itself) and a note with it and
// KVM_CAP_NR_VCPUS.
func smpLimits() (int, string) {
	sys, err := kvm.Open("/dev/kvm")
	if err != nil {
		return 1 << 30, ""
	}
	defer sys.Close()
	most, err1 := sys.CheckExtension(kvm.CapMaxVCPUs)
	nr, err2 := sys.CheckExtension(kvm.CapNrVCPUs)
	if err1 != nil || err2 != nil || most <= 0 {
		return 1 << 30, ""
	}
	return most, fmt.Sprintf("KVM_CAP_MAX_VCPUS=%d, KVM_CAP_NR_VCPUS=%d", most, nr)
}

// smpGovmm is govmm -v with n vCPUs, the command line before -append.
func smpGovmm(v vmm, n int) []string {
	return append(dropAppend(v.argv("", true)), "-cpus", fmt.Sprint(n))
}

// smpQEMU is QEMU on q35 with n vCPUs, the command line before -append.
func smpQEMU(v *vmm, n int) []string {
	return qemuVirtio(v, "-smp", fmt.Sprint(n)).argv
}

// linesRun is when each awaited line came, from exec, and the output.
type linesRun struct {
	at             []time.Duration
	stdout, stderr string
}

// runLines runs argv with "-append cmdline", times the first line
// starting with each of lines on its standard output, and checks that
// it ended with okStatus, the guest's success (QEMU's isa-debug-exit
// gives 1 for the guest's 0), and printed want.
func runLines(ctx context.Context, argv []string, okStatus int, cmdline string, lines []string, want string, timeout time.Duration) (linesRun, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv = append(append([]string{}, argv...), "-append", cmdline)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	lt := &lineTimer{want: lines, at: make([]time.Duration, len(lines)), start: time.Now()}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = lt, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	lt.mu.Lock()
	res := linesRun{at: lt.at, stdout: lt.out.String(), stderr: stderr.String()}
	lt.mu.Unlock()
	var ee *exec.ExitError
	status := 0
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %q did not finish within %v: %s", argv[0], cmdline, timeout, tail(res.stdout+res.stderr))
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		return res, err
	}
	if status != okStatus || !strings.Contains(res.stdout, want) {
		return res, fmt.Errorf("%s %q exited %d (want %d), output lacks %q or has more:\n%s", argv[0], cmdline, status, okStatus, want, tail(res.stdout+res.stderr))
	}
	for i, a := range res.at {
		if a == 0 {
			return res, fmt.Errorf("%s %q never printed %q: %s", argv[0], cmdline, lines[i], tail(res.stdout))
		}
	}
	return res, nil
}

// medianCell is the median of ds in milliseconds, or the failure: err,
// or no runs at all.
func (s *suite) medianCell(ds []time.Duration, err error) cell {
	switch {
	case err != nil:
		return s.fail(err)
	case len(ds) == 0:
		return s.fail(errors.New("no runs"))
	}
	return value(durationMS(median(ds)))
}
