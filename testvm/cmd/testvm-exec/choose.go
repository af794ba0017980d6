package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"

	"github.com/govmm/govmm/kvm"
)

type place int

const (
	onHost     place = iota // here, as go test would run it
	inVM                    // inside testvm
	hostThenVM              // here, then the tests RequireLinux left inside testvm (splitRun)
)

// Reasons for choose's answer.
const (
	kvmHardware  = "the host's KVM has hardware virtualization"
	noLinuxTests = "the host's KVM works and the binary has no tests that boot Linux to user space"
	kvmNoLinux   = "the host's KVM cannot boot Linux to user space"
	noKVMTests   = "the binary has no KVM tests"
	skipKVM      = "GOVMM_SKIP_KVM=1"
	forcedHost   = "GOVMM_TESTVM=never"
	forcedVM     = "GOVMM_TESTVM=always"
	kvmMissing   = "the host has no usable KVM"
)

// choose says where the test binary runs: on the host when KVM has
// hardware virtualization here, when KVM tests are skipped anyway, or when
// the binary has no KVM tests; on the host and then in the VM when KVM
// works here but cannot boot Linux to user space (host is PVM) and the
// binary has tests that need that (it links kvmtest.RequireLinux); else
// in the VM. GOVMM_TESTVM=always|never overrides it.
func choose(binary, kvmPath string, host kvm.HostKind) (place, string, error) {
	switch mode := os.Getenv("GOVMM_TESTVM"); mode {
	case "", "auto":
	case "always":
		return inVM, forcedVM, nil
	case "never":
		return onHost, forcedHost, nil
	default:
		return onHost, "", fmt.Errorf("GOVMM_TESTVM=%q: want auto, always or never", mode)
	}
	if os.Getenv("GOVMM_SKIP_KVM") == "1" {
		return onHost, skipKVM, nil
	}
	if f, err := os.OpenFile(kvmPath, os.O_RDWR, 0); err == nil {
		f.Close()
		if host.Hardware() {
			return onHost, kvmHardware, nil
		}
		has, err := hasFunc(binary, requireLinuxFunc)
		if err != nil {
			return onHost, "", err
		}
		if !has {
			return onHost, noLinuxTests, nil
		}
		return hostThenVM, kvmNoLinux, nil
	}
	has, err := linksKVMTests(binary)
	if err != nil {
		return onHost, "", err
	}
	if !has {
		return onHost, noKVMTests, nil
	}
	return inVM, kvmMissing, nil
}

// requireLinuxFunc marks a test binary with tests that boot Linux to user
// space.
const requireLinuxFunc = "github.com/govmm/govmm/kvm/kvmtest.RequireLinux"

// kvmFuncs name the functions that mark a test binary as one with KVM
// tests: kvmtest's helpers, which every test that needs KVM calls first
// (package kvm's own such tests too, from its external test package).
var kvmFuncs = []string{"github.com/govmm/govmm/kvm/kvmtest."}

// linksKVMTests says whether the binary has KVM tests: whether it links
// one of kvmFuncs.
func linksKVMTests(binary string) (bool, error) {
	for _, fn := range kvmFuncs {
		if has, err := hasFunc(binary, fn); has || err != nil {
			return has, err
		}
	}
	return false, nil
}

// hasFunc says whether the Go binary has a function whose name starts with
// prefix. It reads the function names in the .gopclntab section, which the
// runtime needs for tracebacks and so stays when `go test` strips the
// symbol table (inlined functions are there too). Without that section it
// answers true.
func hasFunc(binary, prefix string) (bool, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return false, fmt.Errorf("read test binary: %w", err)
	}
	defer f.Close()
	sec := f.Section(".gopclntab")
	if sec == nil {
		return true, nil
	}
	data, err := sec.Data()
	if err != nil {
		return false, fmt.Errorf("read test binary %s: %w", binary, err)
	}
	return bytes.Contains(data, []byte(prefix)), nil
}
