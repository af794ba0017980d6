package main

// The start-up breakdown that -v (make bench V=1) prints under the table:
// where the time from exec to the guest's first exit, and on to the end,
// goes in govmm and in cvmm, read from the lines both print with -v:
//
//	govmm: start-up: prepare=0.448ms mmap=0.371ms ram=0.320ms kvm=0.116ms setup=1.113ms state=0.045ms
//	govmm: starting 1 vCPU(s) 2.84ms after start (pvm host)
//	boot-timer: mark 1 (0x01) at 9003 us (9.003ms) since VMM start
//	govmm: guest ended (power off, status 0) after 27.412ms
//	govmm: close=0.756ms
//
// and cvmm's "cvmm: start-up: ram=... kvm=... setup=...", "cvmm: starting
// 1 vCPU(s) ...ms after start" and "cvmm: guest ended (status 0) after
// ...ms".

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// phases is one run's breakdown: a step's name to its milliseconds.
type phases map[string]float64

var (
	phaseItem    = regexp.MustCompile(`([a-z-]+)=([0-9.]+)ms(\(alongside\))?`)
	startingLine = regexp.MustCompile(`^(?:govmm|cvmm): starting \d+ vCPU\(s\) ([0-9.]+(?:ms|µs|us|ns|s)) after start`)
	endedLine    = regexp.MustCompile(`^(?:govmm|cvmm): guest ended .*? after ([0-9.]+(?:ms|µs|us|ns|s))$`)
	closeLine    = regexp.MustCompile(`^govmm: close=([0-9.]+)ms$`)
	flagsLine    = regexp.MustCompile(`^govmm: before the clock: flags=([0-9.]+)ms$`)
)

// Keys besides the start-up steps.
const (
	keyStart = "vcpu-start" // ms after the VMM's clock started: the first KVM_RUN
	keyEnded = "ended"      // ms after the VMM's clock started: the guest's end
	keyClose = "close"      // govmm's Machine.Close
	keyFlags = "flags"      // govmm's main to its clock's start: flags, options
	keyMark  = "mark"       // the first boot-timer mark, VMM's clock
	keySeen  = "seen"       // exec to the mark line reaching the bench
	keyWall  = "wall"       // exec to the VMM reaped
	// keySteps is the start-up steps' sum without those that ran
	// alongside: the VMM's clock start to its last step's end.
	keySteps = "steps"
)

// parsePhases reads one run's -v lines from stderr. A step that ran
// alongside the others is kept under its name (its time overlaps).
func parsePhases(stderr string) phases {
	p := phases{}
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "govmm: start-up: "), strings.HasPrefix(line, "cvmm: start-up: "):
			for _, m := range phaseItem.FindAllStringSubmatch(line, -1) {
				if v, err := strconv.ParseFloat(m[2], 64); err == nil {
					p[m[1]] = v
					if m[3] == "" {
						p[keySteps] += v
					}
				}
			}
		case startingLine.MatchString(line):
			p.setDuration(keyStart, startingLine.FindStringSubmatch(line)[1])
		case endedLine.MatchString(line):
			p.setDuration(keyEnded, endedLine.FindStringSubmatch(line)[1])
		case closeLine.MatchString(line):
			if v, err := strconv.ParseFloat(closeLine.FindStringSubmatch(line)[1], 64); err == nil {
				p[keyClose] = v
			}
		case flagsLine.MatchString(line):
			if v, err := strconv.ParseFloat(flagsLine.FindStringSubmatch(line)[1], 64); err == nil {
				p[keyFlags] = v
			}
		}
	}
	return p
}

func (p phases) setDuration(key, s string) {
	if d, err := time.ParseDuration(s); err == nil {
		p[key] = durationMS(d)
	}
}

// step is one line of the breakdown: how to get it from a run's phases.
type step struct {
	name  string
	value func(p phases) (float64, bool)
	notes string
}

// key is a step read as is.
func key(k string) func(phases) (float64, bool) {
	return func(p phases) (float64, bool) { v, ok := p[k]; return v, ok }
}

// diff is a - b when the run has both.
func diff(a, b func(phases) (float64, bool)) func(phases) (float64, bool) {
	return func(p phases) (float64, bool) {
		x, ok1 := a(p)
		y, ok2 := b(p)
		return x - y, ok1 && ok2
	}
}

// breakdownSteps are the breakdown's lines, in time order.
var breakdownSteps = []step{
	{"exec -> VMM's clock starts", diff(key(keySeen), key(keyMark)),
		"govmm: Go runtime and package init, flags (seen by bench - own mark time)"},
	{"  exec, Go runtime and package init (-> main)", diff(diff(key(keySeen), key(keyMark)), key(keyFlags)), "govmm only: the line above less the next"},
	{"  flags and options (main -> the clock)", key(keyFlags), "govmm only"},
	{"  read kernel and initrd, open the serial output, Landlock", key("prepare"), "govmm only"},
	{"  host kind, /dev/kvm, capabilities, VM, mmap guest RAM", key("mmap"), "cvmm: in the next line"},
	{"  KVM_SET_USER_MEMORY_REGION", key("ram"), "both before the irqchip; cvmm: with /dev/kvm, VM and mmap"},
	{"  KVM: TSS, irqchip, PIT", key("kvm"), "cvmm: no PIT"},
	{"  devices, ACPI, kernel load, vCPUs and CPUID", key("setup"), "cvmm: ELF load, boot tables, vCPU, CPUID, registers"},
	{"    KVM_GET_SUPPORTED_CPUID, on another thread meanwhile", key("cpuid"), "govmm: alongside the steps above from /dev/kvm's opening, waited for by the next line; cvmm: in the line above"},
	{"    KVM_CREATE_VCPU and KVM_SET_CPUID2, on other threads meanwhile", key("vcpus"), "govmm: from the irqchip on, alongside the devices, ACPI and kernel load; cvmm: in the line above"},
	{"  snapshot and migration state (none at boot)", key("state"), "govmm only"},
	{"  -> first KVM_RUN (Run: console, seccomp, threads)", diff(key(keyStart), key(keySteps)),
		"from the last start-up step to the vCPU's first run"},
	{"first KVM_RUN -> first guest exit (the guest's own start)", diff(key(keyMark), key(keyStart)), ""},
	{"first exit -> guest's end (its checks, printing, ring-3 loop)", diff(key(keyEnded), key(keyMark)), ""},
	{"guest's end -> VMM reaped by bench (teardown, exit)", func(p phases) (float64, bool) {
		seen, ok1 := p[keySeen]
		mark, ok2 := p[keyMark]
		ended, ok3 := p[keyEnded]
		wall, ok4 := p[keyWall]
		return wall - (seen - mark) - ended, ok1 && ok2 && ok3 && ok4
	}, "cvmm: KVM tears the VM down as the process exits"},
	{"  of which Machine.Close (VM teardown)", key(keyClose), "govmm: KVM tears the VM down here, its PIT's too"},
	{"total: exec -> reaped", key(keyWall), "the boot + power-off row"},
}

// breakdownRows turns the runs of govmm and of cvmm into the breakdown's
// rows: the median of each step over the runs that have it.
func breakdownRows(govmm, cvmm []phases) []row {
	med := func(runs []phases, f func(phases) (float64, bool)) cell {
		var vs []time.Duration
		for _, p := range runs {
			if v, ok := f(p); ok {
				vs = append(vs, time.Duration(v*float64(time.Millisecond)))
			}
		}
		if len(vs) == 0 {
			return missing("-")
		}
		return value(durationMS(median(vs)))
	}
	rows := make([]row, 0, len(breakdownSteps))
	for _, s := range breakdownSteps {
		rows = append(rows, row{Name: s.name, Govmm: med(govmm, s.value), Peer: med(cvmm, s.value), Unit: "ms", Notes: s.notes})
	}
	return rows
}
