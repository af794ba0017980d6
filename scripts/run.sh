#!/usr/bin/env bash
# make run: boot the default Linux guest (Debian's cloud kernel and the
# u-root initrd with the guest agent) to a shell on this terminal.
# Usage: scripts/run.sh GOVMM IMAGES_ENV MEM CPUS
set -euo pipefail
govmm=$1 env=$2 mem=$3 cpus=$4
kernel=$(sed -n 's/^kernel=//p' "$env")
initrd=$(sed -n 's/^initrd=//p' "$env")

append="console=ttyS0 reboot=k panic=-1 quiet"
if [ ! -e /dev/kvm ]; then
  if command -v qemu-system-x86_64 >/dev/null && [ -x bin/testvm-run ]; then
    # No KVM here: run govmm (static) inside an emulated AMD SVM machine,
    # where kvm_amd gives a /dev/kvm: nested KVM under QEMU's TCG.
    cat >&2 <<MSG
make run: this host has no /dev/kvm; govmm runs inside a QEMU-emulated machine
  with nested KVM (slower). Ctrl-A x quits; 'exit' in the shell ends the VM.
MSG
    exec bin/testvm-run -file "$kernel" -file "$initrd" -- "$govmm" \
      -kernel "$kernel" -initrd "$initrd" -mem "$mem" -cpus "$cpus" -append "$append"
  fi
  cat >&2 <<MSG
make run: this host has no /dev/kvm, so govmm cannot run a guest here.
  Load KVM (modprobe kvm_intel or kvm_amd) or run on a host with KVM.
  (If this machine is itself a PVM guest, kvm_pvm refuses to bind and no
  /dev/kvm appears: dmesg says "this kernel is itself a kvm-pvm guest".)
  Installing qemu-system-x86 lets make run boot the guest inside an emulated
  machine with nested KVM; 'make test' runs the KVM tests that way too.
MSG
  exit 1
fi
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -d /sys/module/kvm_intel -o -d /sys/module/kvm_amd ]; then
  echo "make run: booting $kernel with $mem of RAM. Ctrl-A x quits; 'poweroff' in the shell ends the VM." >&2
else
  cat >&2 <<MSG
make run: this is a PVM host (kvm_pvm, no vmx/svm): guest ring 0 is emulated
  by KVM at about a million instructions a second. Here is what will happen:
  govmm decompresses the kernel itself (the fast path), Linux prints its
  banner within seconds, then its memory map and ACPI/PCI probing slowly,
  and stops before user space (a stock kernel's SYSCALL path does not work
  under PVM), so no shell appears. Ctrl-A x quits at any time.
MSG
fi
exec "$govmm" -kernel "$kernel" -initrd "$initrd" -mem "$mem" -cpus "$cpus" \
  -append "$append"
