package machine

import (
	"fmt"
	"os"
	"testing"

	"github.com/govmm/govmm/images/testguest"
	"github.com/govmm/govmm/kvm/kvmtest"
)

// BenchmarkNewSMP measures machine.New with N vCPUs: KVM's VM, RAM, the
// devices, the ACPI tables built and written, the kernel loaded and every
// vCPU created with its CPUID, the boot vCPU's registers set: everything
// before the first guest instruction. Measured on a PVM host, 2 cores
// (2026-11-29): see the report of issue 5.
func BenchmarkNewSMP(b *testing.B) {
	kvmtest.Require(b)
	g, err := testguest.Build(kvmtest.CacheDir())
	if err != nil {
		b.Fatal(err)
	}
	elf, err := os.ReadFile(g.ELF)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 4, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				m, err := New(Config{KVMPath: kvmtest.Path(), Kernel: elf, Cmdline: "mode=acpi", MemSize: 64 << 20, CPUs: n})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkACPITables measures building the tables alone.
func BenchmarkACPITables(b *testing.B) {
	for _, n := range []int{1, 4, 32} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ACPITables(Config{CPUs: n, MemSize: 512 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
