// Package boot prepares everything a Linux guest sees at power-on: the
// guest-physical layout (layout.go), the kernel in RAM, the zero page, the
// initrd, and the CPU state for the kernel's 64-bit entry point.
//
// A real PC runs firmware and a boot loader before Linux; govmm plays both
// parts, following Linux's boot protocol (Documentation/arch/x86/boot.rst).
//
// The zero page is struct boot_params, one 4 KiB page that tells the
// kernel what a BIOS and a boot loader would: where the command line and
// the initrd are, and the e820 memory map (which ranges are RAM and which
// are reserved). At offset 0x1F1 it holds a copy of
// the bzImage's setup header, with the loader's fields filled in.
//
// The VMM builds page tables because the 64-bit entry point expects the CPU
// already in long mode, and long mode cannot exist without paging: CR3 must
// point at tables mapping at least the kernel, the zero page and the command
// line. We identity-map the first 4 GiB with 2 MiB pages (six 4 KiB tables)
// and let the kernel replace them with its own soon after.
//
// The loaders return where they put things (a Kernel, an Initrd, an
// EntryState) and never touch vCPU registers; the machine package turns an
// EntryState into KVM's register structs.
//
// A bzImage carries the kernel compressed; its own decompressor unpacks it
// inside the guest. On PVM hosts guest kernel code runs in KVM's
// instruction emulator, so that decompression takes about two minutes. The
// fast path (Decompress, DecompressCached) unpacks the payload in the VMM
// in about a second, with Go's decompressors (and, for xz, the container
// and the x86 BCJ filter read here, xz.go and bcj.go), and loads the resulting
// vmlinux ELF directly (LoadELF); errors wrapping ErrNoFastPath tell the
// caller to fall back to booting the bzImage normally.
package boot
