package kvm

import (
	"bufio"
	"bytes"
	"io/fs"
	"slices"
	"strings"
)

// HostKind says how the host provides KVM.
type HostKind int

const (
	HostUnknown HostKind = iota // no KVM module seen
	HostVMX                     // Intel VT-x (kvm_intel)
	HostSVM                     // AMD-V (kvm_amd)
	HostPVM                     // PVM: KVM's API without hardware virtualization (kvm_pvm)
)

func (k HostKind) String() string {
	switch k {
	case HostVMX:
		return "vmx"
	case HostSVM:
		return "svm"
	case HostPVM:
		return "pvm"
	}
	return "unknown"
}

// Hardware reports whether guests run on hardware virtualization, where a
// full Linux boot takes well under a second.
func (k HostKind) Hardware() bool { return k == HostVMX || k == HostSVM }

// HostInfo is what a host's /sys/module and /proc/cpuinfo say about it,
// read in one pass: reading /proc/cpuinfo costs about 0.1 ms, so a VMM
// reads it once at start.
type HostInfo struct {
	Kind HostKind
	// Model is the host processor's brand string, /proc/cpuinfo's "model
	// name" of its first processor, or "" when it has none. A VMM gives
	// it to the guest in CPUID leaves 0x8000_0002-4, which KVM leaves
	// empty.
	Model string
}

// ReadHost tells which KVM backend a host has, and its processor's name.
// root is the host's root file system (os.DirFS("/") in production, an
// fstest.MapFS in tests).
//
// A host whose CPU flags show vmx or svm and that has the matching module
// loaded is a hardware host. A host with kvm_pvm loaded and no hardware
// module is a PVM host: guest ring 0 is emulated there.
func ReadHost(root fs.FS) HostInfo {
	has := func(mod string) bool {
		_, err := fs.Stat(root, "sys/module/"+mod)
		return err == nil
	}
	info := cpuInfo(root, "flags", "model name")
	flags := map[string]bool{}
	for _, f := range strings.Fields(info["flags"]) {
		flags[f] = true
	}
	h := HostInfo{Model: strings.TrimSpace(info["model name"])}
	switch {
	case flags["vmx"] && has("kvm_intel"):
		h.Kind = HostVMX
	case flags["svm"] && has("kvm_amd"):
		h.Kind = HostSVM
	case has("kvm_pvm"):
		h.Kind = HostPVM
	}
	return h
}

// DetectHost is ReadHost's Kind.
func DetectHost(root fs.FS) HostKind { return ReadHost(root).Kind }

// cpuInfo returns the values of keys for the first processor in
// /proc/cpuinfo; a key it does not have is missing from the map.
func cpuInfo(root fs.FS, keys ...string) map[string]string {
	out := map[string]string{}
	b, err := fs.ReadFile(root, "proc/cpuinfo")
	if err != nil {
		return out
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() && len(out) < len(keys) {
		k, val, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, seen := out[k]; !seen && slices.Contains(keys, k) {
			out[k] = val
		}
	}
	return out
}
