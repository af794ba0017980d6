// Package kvm is govmm's binding to the Linux KVM API: the ioctl numbers,
// the C structs they carry mirrored as Go structs, and a type for each kind
// of file descriptor KVM hands out. It is the only package that makes
// unsafe system calls.
//
// KVM is a tree of file descriptors, and so is this package:
//
//	/dev/kvm  -> System   Open; ask about the host (CheckExtension,
//	   |                  SupportedCPUID); CreateVM
//	   v
//	VM fd     -> VM       guest memory slots (SetUserMemoryRegion), the
//	   |                  in-kernel interrupt controllers and PIT, irqfd and
//	   |                  ioeventfd, the VM clock; CreateVCPU
//	   v
//	vCPU fd   -> VCPU     registers and state (GetRegs, SetSregs, ...), and
//	                      Run, which enters the guest until it needs the VMM
//
// Each vCPU fd also has a shared page, struct kvm_run, that the VCPU maps.
// After KVM_RUN returns, the kernel has written there why the guest stopped
// (the exit reason) and its details, for example the port and the bytes of
// an OUT instruction. Run decodes that page into a typed Exit (*IOExit,
// *MMIOExit, *HLTExit, ...); the VMM handles the exit, writing any answer
// for an IN or an MMIO read into the exit's Data, which aliases the page,
// and calls Run again.
//
// Requests whose argument is a struct take a pointer to its Go mirror; each
// mirror's size and field offsets, and every ioctl number and constant,
// are checked against the host's <linux/kvm.h> as gcc compiles it
// (TestABIMatchesHeader runs testdata/kvmlayout.c). Only
// linux/amd64 is supported: the structs are x86's.
//
// Errors wrap the errno with %w after naming the request, so callers can
// test errors.Is(err, unix.EINTR) and a report reads
// "KVM_SET_REGS on vCPU 0: invalid argument".
package kvm
