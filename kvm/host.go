package kvm

import (
	"bufio"
	"bytes"
	"io/fs"
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

// DetectHost tells which KVM backend a host has, from its /sys/module and
// /proc/cpuinfo. root is the host's root file system (os.DirFS("/") in
// production, an fstest.MapFS in tests).
//
// A host whose CPU flags show vmx or svm and that has the matching module
// loaded is a hardware host. A host with kvm_pvm loaded and no hardware
// module is a PVM host: guest ring 0 is emulated there.
func DetectHost(root fs.FS) HostKind {
	has := func(mod string) bool {
		_, err := fs.Stat(root, "sys/module/"+mod)
		return err == nil
	}
	flags := cpuFlags(root)
	switch {
	case flags["vmx"] && has("kvm_intel"):
		return HostVMX
	case flags["svm"] && has("kvm_amd"):
		return HostSVM
	case has("kvm_pvm"):
		return HostPVM
	}
	return HostUnknown
}

// cpuFlags returns the flags of the first processor in /proc/cpuinfo.
func cpuFlags(root fs.FS) map[string]bool {
	val, ok := cpuInfo(root, "flags")
	if !ok {
		return nil
	}
	m := map[string]bool{}
	for _, f := range strings.Fields(val) {
		m[f] = true
	}
	return m
}

// HostCPUModel is the host processor's brand string, /proc/cpuinfo's
// "model name" of its first processor, or "" when it has none. A VMM gives
// it to the guest in CPUID leaves 0x8000_0002-4, which KVM leaves empty.
func HostCPUModel(root fs.FS) string {
	val, _ := cpuInfo(root, "model name")
	return strings.TrimSpace(val)
}

// cpuInfo returns the value of key for the first processor in
// /proc/cpuinfo.
func cpuInfo(root fs.FS, key string) (string, bool) {
	b, err := fs.ReadFile(root, "proc/cpuinfo")
	if err != nil {
		return "", false
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		k, val, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return val, true
		}
	}
	return "", false
}
