package machine

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// On PVM hosts KVM rewrites CPUID leaves 1, 7 and 0xD with host bits after
// KVM_SET_CPUID2 (DESIGN.md), so a Linux guest sees most of the features
// govmm hides and uses them in ring 0, where KVM's emulator fails on them.
// Linux's own kernel parameters turn them off instead
// (Documentation/admin-guide/kernel-parameters.txt): this file derives
// them from the hidden features and adds them to the command line.

// linuxSwitches are hidden features Linux has a parameter of their own
// for; the rest go into clearcpuid=.
var linuxSwitches = map[string]string{
	"xsave":    "noxsave",
	"fsgsbase": "nofsgsbase",
	"pku":      "nopku",
}

// linuxRing0First are the clearcpuid= names of features Linux uses in ring
// 0, which PVM emulates, most needed first: those measured to stop
// Debian's cloud kernel (DESIGN.md), the SIMD extensions its built-in
// code runs after kernel_fpu_begin, then those its alternatives or CR4
// use. rdtscp is last: on PVM its CPUID hiding (leaf 0x80000001) sticks.
// Features only user space uses run natively in ring 3 and come after, as
// room allows.
var linuxRing0First = []string{
	"popcnt", "cx16", "rdrand", "rdseed", "smap", "smep", "umip", "pcid", "invpcid", "la57",
	"ssse3", "sse4_2", "pclmulqdq", "aes", "sha_ni",
	"clflushopt", "clwb", "waitpkg", "rdpid", "rdtscp",
}

// clearCPUIDMax is the longest clearcpuid= value Linux reads whole: it
// copies the value into a 128-byte buffer (cpu_parse_early_param in
// arch/x86/kernel/cpu/common.c) and drops what does not fit.
const clearCPUIDMax = 127

// hideParams are the kernel parameters that keep Linux off the hidden
// features, and the features clearcpuid= had no room for.
type hideParams struct {
	Params []string // "noxsave", ..., "clearcpuid=popcnt,cx16,..."
	NoRoom []string // feature names left out of clearcpuid=
}

// linuxHideParams derives the kernel parameters from the hidden features.
// A feature that needs another hidden feature is left to that one: Linux
// drops it with its prerequisite (noxsave takes avx, avx2, fma, f16c,
// avx512f and osxsave along; nopku takes ospke).
func linuxHideParams(hidden []vcpu.CPUIDBit) hideParams {
	isHidden := map[string]bool{}
	for _, b := range hidden {
		isHidden[b.Name] = true
	}
	var out hideParams
	var clear []string
	for _, b := range hidden {
		if b.Needs != "" && isHidden[b.Needs] {
			continue
		}
		if p, ok := linuxSwitches[b.Name]; ok {
			out.Params = append(out.Params, p)
			continue
		}
		clear = append(clear, b.Name)
	}
	// Ring-0 features first, in their listed order; then the rest as hidden.
	rank := func(name string) int {
		for i, n := range linuxRing0First {
			if n == name {
				return i
			}
		}
		return len(linuxRing0First)
	}
	ordered := make([]string, 0, len(clear))
	for r := 0; r <= len(linuxRing0First); r++ {
		for _, n := range clear {
			if rank(n) == r {
				ordered = append(ordered, n)
			}
		}
	}
	value := ""
	for _, n := range ordered {
		next := n
		if value != "" {
			next = value + "," + n
		}
		if len(next) > clearCPUIDMax {
			out.NoRoom = append(out.NoRoom, n)
			continue
		}
		value = next
	}
	if value != "" {
		out.Params = append(out.Params, "clearcpuid="+value)
	}
	return out
}

// cmdlineEdit is a command line with govmm's parameters added.
type cmdlineEdit struct {
	Cmdline string   // what the guest gets
	Added   []string // parameters govmm added
	Yours   []string // parameters govmm left out because the command line already names them
}

// addParams adds params to a Linux command line. The user's parameters
// win: one whose name the command line already has is not added. They go
// before a "--", after which Linux hands everything to init. Names compare
// as Linux compares them, with '-' and '_' the same (kernel/params.c,
// parameq).
func addParams(cmdline string, params []string) cmdlineEdit {
	words, end := cmdlineWords(cmdline)
	have := map[string]bool{}
	for _, w := range words {
		have[paramName(w)] = true
	}
	e := cmdlineEdit{Cmdline: cmdline}
	for _, p := range params {
		if have[paramName(p)] {
			e.Yours = append(e.Yours, p)
			continue
		}
		e.Added = append(e.Added, p)
	}
	if len(e.Added) == 0 {
		return e
	}
	add := strings.Join(e.Added, " ")
	switch {
	case end < len(cmdline): // before the "--"
		e.Cmdline = cmdline[:end] + add + " " + cmdline[end:]
	case strings.TrimSpace(cmdline) == "":
		e.Cmdline = add
	case strings.HasSuffix(cmdline, " "):
		e.Cmdline = cmdline + add
	default:
		e.Cmdline = cmdline + " " + add
	}
	return e
}

// cmdlineWords splits a command line into the kernel's parameters, as
// Linux's next_arg (lib/cmdline.c) does: words separated by spaces, double
// quotes keeping spaces inside one. It stops at a "--" word and returns
// where that word starts (len(cmdline) when there is none).
func cmdlineWords(cmdline string) ([]string, int) {
	var words []string
	i := 0
	for {
		for i < len(cmdline) && isSpace(cmdline[i]) {
			i++
		}
		if i == len(cmdline) {
			return words, i
		}
		start, quoted := i, false
		for i < len(cmdline) && (quoted || !isSpace(cmdline[i])) {
			if cmdline[i] == '"' {
				quoted = !quoted
			}
			i++
		}
		w := cmdline[start:i]
		if w == "--" {
			return words, start
		}
		words = append(words, w)
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// paramName is a parameter's name without its value and quotes, with '-'
// as '_'.
func paramName(w string) string {
	w = strings.ReplaceAll(w, `"`, "")
	name, _, _ := strings.Cut(w, "=")
	return strings.ReplaceAll(name, "-", "_")
}

// linuxVersionString matches the kernel_version string Linux puts in a
// bzImage: "<release> (<user>@<host>) #<build> ..." (arch/x86/boot/version.c).
var linuxVersionString = regexp.MustCompile(`^\S+ \([^()]*@[^()]*\) #`)

// linuxBanner starts the banner every Linux kernel prints (init/version.c).
var linuxBanner = []byte("Linux version ")

// isLinux reports whether the loaded kernel is Linux: a bzImage whose
// kernel_version string has Linux's form, or an ELF holding Linux's banner.
func isLinux(l *Loaded, image []byte) bool {
	if l.Path == "elf" {
		return bytes.Contains(image, linuxBanner)
	}
	return linuxVersionString.MatchString(l.Kernel.Header.KernelVersion)
}

// wantLinuxHideParams says whether to add the parameters: where CPUID
// hiding is on and the host is PVM, whose KVM does not keep it. Elsewhere
// the guest's CPUID already hides the features.
func wantLinuxHideParams(mode HideMode, host kvm.HostKind) bool {
	return mode != HideOff && host == kvm.HostPVM
}

// addLinuxHideParams returns c.Cmdline with the kernel parameters for the
// features govmm hides, and says in the verbose log what it added, what
// the user's own parameters kept out, and what found no room.
func addLinuxHideParams(c *Config, log io.Writer) string {
	hp := linuxHideParams(vcpu.PVMHidden)
	e := addParams(c.Cmdline, hp.Params)
	if c.Verbose && log != nil {
		fmt.Fprintf(log, "govmm: Linux on a PVM host, where KVM shows hidden CPU features anyway: added to the command line: %s\n", orNone(e.Added))
		if len(e.Yours) > 0 {
			fmt.Fprintf(log, "govmm: your command line names these already, kept as you gave them: %s\n", strings.Join(e.Yours, " "))
		}
		if len(hp.NoRoom) > 0 {
			fmt.Fprintf(log, "govmm: no room in clearcpuid= (%d bytes at most) for: %s\n", clearCPUIDMax, strings.Join(hp.NoRoom, ","))
		}
	}
	return e.Cmdline
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " ")
}
