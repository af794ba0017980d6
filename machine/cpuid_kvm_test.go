package machine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/kvm/kvmtest"
	"github.com/govmm/govmm/vcpu"
)

// runTestGuest boots the test guest's ELF with cmdline and returns the
// machine (closed at the end of the test), its serial output and log.
func runTestGuest(t *testing.T, cmdline string, hide HideMode) (*Machine, Result, string, string) {
	t.Helper()
	var serial, log syncBuffer
	m, err := New(Config{
		KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), Cmdline: cmdline,
		MemSize: 64 << 20, CPUs: 1, Hide: hide, SerialOut: &serial, Log: &log, Verbose: true,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := m.Run(ctx)
	if err != nil || ctx.Err() != nil {
		t.Fatalf("Run() = %+v, %v (context: %v)\nserial:\n%s\nlog:\n%s", res, err, ctx.Err(), serial.String(), log.String())
	}
	return m, res, strings.ReplaceAll(serial.String(), "\r", ""), log.String()
}

// bit reads one CPUIDBit out of the registers the guest printed.
func bit(r testguest.CPUIDRegs, b vcpu.CPUIDBit) bool {
	reg := map[byte]uint32{'a': r.EAX, 'b': r.EBX, 'c': r.ECX, 'd': r.EDX}[b.Reg]
	return reg&(1<<b.Bit) != 0
}

// TestGuestSeesReadBackCPUID runs the test guest's mode=cpuid with the PVM
// features hidden and checks that CPUID in ring 0 and in ring 3 answers
// exactly what KVM_GET_CPUID2 reported after govmm set the table, so the
// read-back is what -v's report and the command-line equivalents rest on.
//
// On hosts with hardware virtualization KVM keeps the table as set: no
// hidden feature is visible. On PVM hosts (measured 2026-11-29, kernel
// 6.18) kvm_pvm rewrites leaves 1, 7 and 0xD with host bits, and the guest
// sees 28 of the 39 hidden features (pclmulqdq, ssse3, sse4_1, sse4_2,
// movbe, popcnt, aes, xsave, avx, f16c, rdrand, fma, fsgsbase, avx2, bmi1,
// smep, bmi2, rtm, avx512f, rdseed, adx, smap, clflushopt, clwb, sha_ni,
// umip, movdiri, movdir64b);
// leaf 0x80000001 keeps its hiding (abm, rdtscp), and ring 3's CPUID is
// trapped too (it sees KVM's leaf 0x40000000).
func TestGuestSeesReadBackCPUID(t *testing.T) {
	host := kvmtest.Require(t)
	m, res, serial, log := runTestGuest(t, "mode=cpuid", HideOn)
	if res.Reason != vcpu.StopPowerOff || res.Status != testguest.ExitOK || !strings.Contains(serial, "cpuid done") {
		t.Fatalf("Run() = %+v, want power off with status 0 after \"cpuid done\"\nserial:\n%s", res, serial)
	}
	ring0, ring3, err := testguest.ParseCPUID(serial)
	if err != nil {
		t.Fatalf("%v\nserial:\n%s", err, serial)
	}
	table := m.VCPUs()[0].CPUID
	for _, p := range testguest.CPUIDProbes {
		var want testguest.CPUIDRegs
		for _, e := range table {
			if e.Function == p.Leaf && (e.Index == p.Subleaf || e.Flags&kvm.CPUIDFlagSignificantIndex == 0) {
				want = testguest.CPUIDRegs{EAX: e.EAX, EBX: e.EBX, ECX: e.ECX, EDX: e.EDX}
				break
			}
		}
		if p.Leaf == 0xd {
			// EBX is the XSAVE area size for what XCR0 enables now,
			// which KVM computes at the guest's CPUID.
			want.EBX = ring0[p].EBX
		}
		if ring0[p] != want || ring3[p] != want {
			t.Errorf("CPUID leaf %#x.%d: ring 0 %+v, ring 3 %+v, want both as KVM_GET_CPUID2 said: %+v", p.Leaf, p.Subleaf, ring0[p], ring3[p], want)
		}
	}
	visible := vcpu.StillVisible(table, vcpu.PVMHidden)
	var names []string
	for _, b := range vcpu.PVMHidden {
		leaf := testguest.CPUIDLeaf{Leaf: b.Leaf, Subleaf: b.Subleaf}
		in0, in3 := bit(ring0[leaf], b), bit(ring3[leaf], b)
		if in0 != b.SetIn(table) || in3 != b.SetIn(table) {
			t.Errorf("hidden %s: ring 0 sees %v, ring 3 sees %v, KVM_GET_CPUID2 says %v", b.Name, in0, in3, b.SetIn(table))
		}
		if in0 {
			names = append(names, b.Name)
		}
	}
	if len(names) != len(visible) {
		t.Errorf("StillVisible = %d features, the guest saw %d (%v)", len(visible), len(names), names)
	}
	switch {
	case host == kvm.HostPVM:
		t.Logf("on this PVM host the guest sees %d of %d hidden features: %s", len(visible), len(vcpu.PVMHidden), strings.Join(names, ","))
		if !strings.Contains(log, fmt.Sprintf("KVM shows %d of the %d hidden CPUID features anyway: %s", len(visible), len(vcpu.PVMHidden), strings.Join(names, ","))) {
			t.Errorf("the -v log does not name the %d visible hidden features:\n%s", len(visible), log)
		}
		for _, b := range vcpu.PVMHidden {
			if b.Leaf == 0x8000_0001 && b.SetIn(table) {
				t.Errorf("hidden %s (leaf 0x80000001) is visible; kvm_pvm kept that leaf as set when measured", b.Name)
			}
		}
		if r := ring3[testguest.CPUIDLeaf{Leaf: 0x4000_0000}]; r.EBX != 0x4b4d564b {
			t.Errorf("ring 3 CPUID leaf 0x40000000 EBX = %#x, want KVM's signature (ring 3's CPUID trapped)", r.EBX)
		}
	case host.Hardware():
		if len(visible) != 0 {
			t.Errorf("on a %v host the guest sees hidden features %s, want none", host, strings.Join(names, ","))
		}
		if !strings.Contains(log, "KVM keeps all") {
			t.Errorf("the -v log does not say KVM kept the hiding:\n%s", log)
		}
	}
}

// TestMXCSRFixupsInGuest runs the test guest's mode=mxcsr: ldmxcsr and
// stmxcsr in ring 0 in five addressing forms, ring 3 reading and loading
// MXCSR natively, and #GP for a reserved bit (which QEMU's software CPU,
// where testvm nests KVM, loads without one). On PVM hosts KVM's emulator
// fails on each of them and govmm performs them (3 ldmxcsr, 5 stmxcsr, 1
// #GP); on hardware they run natively and govmm sees none.
func TestMXCSRFixupsInGuest(t *testing.T) {
	host := kvmtest.Require(t)
	m, res, serial, log := runTestGuest(t, "mode=mxcsr", HideAuto)
	if res.Reason != vcpu.StopPowerOff || res.Status != testguest.ExitOK {
		t.Fatalf("Run() = %+v, want power off with status 0\nserial:\n%s\nlog:\n%s", res, serial, log)
	}
	gp := "mxcsr reserved bit: #GP"
	if kvmtest.SoftwareCPU() {
		gp = "mxcsr reserved bit: loaded without #GP" // QEMU's TCG does not check
	}
	for _, want := range []string{gp, "mxcsr ok"} {
		if !strings.Contains(serial, want) {
			t.Errorf("serial output lacks %q:\n%s", want, serial)
		}
	}
	f := &m.VCPUs()[0].Fixups
	got := fmt.Sprintf("ldmxcsr=%d stmxcsr=%d faults=%d", f.Ldmxcsr.Load(), f.Stmxcsr.Load(), f.Faults.Load())
	switch {
	case host == kvm.HostPVM:
		if want := "ldmxcsr=3 stmxcsr=5 faults=1"; got != want {
			t.Errorf("fixups on a PVM host: %s, want %s (every ldmxcsr and stmxcsr of ring 0)", got, want)
		}
	case host.Hardware():
		if f.Total() != 0 {
			t.Errorf("fixups on a %v host: %s, want none", host, got)
		}
	}
}

// TestVCPUsGetTheirOwnCPUID: New sets the vCPUs' CPUID on several threads
// at once (makeVCPUs); each vCPU must still get its own table, whose
// initial APIC ID (leaf 1 EBX[31:24]; leaf 0xB's x2APIC ID in EDX) is the
// APIC ID it was created with, as the MADT says.
func TestVCPUsGetTheirOwnCPUID(t *testing.T) {
	kvmtest.Require(t)
	const cpus = 8
	m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: readFile(t, guests(t).ELF), MemSize: 64 << 20, CPUs: cpus})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	topo := vcpu.Topology{Cores: cpus}
	if got := len(m.VCPUs()); got != cpus {
		t.Fatalf("%d vCPUs, want %d", got, cpus)
	}
	for i, v := range m.VCPUs() {
		want := topo.APICID(i)
		var leaf1, leafB bool
		for _, e := range v.CPUID {
			switch {
			case e.Function == 1:
				leaf1 = true
				if got := e.EBX >> 24; got != want {
					t.Errorf("vCPU %d: CPUID 1 EBX's APIC ID = %d, want %d", i, got, want)
				}
			case e.Function == 0xb && e.Index == 0:
				leafB = true
				if e.EDX != want {
					t.Errorf("vCPU %d: CPUID 0xB EDX (x2APIC ID) = %d, want %d", i, e.EDX, want)
				}
			}
		}
		if !leaf1 || !leafB {
			t.Errorf("vCPU %d: its table lacks leaf 1 (%v) or leaf 0xB (%v)", i, leaf1, leafB)
		}
	}
}
