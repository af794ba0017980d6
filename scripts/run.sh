#!/usr/bin/env bash
# make run: boot the default Linux guest (Debian's cloud kernel and the
# u-root initrd with the guest agent) to a shell on this terminal, or, with
# CMD set, run that command in a fresh guest and exit with its status.
#
#   scripts/run.sh GOVMM IMAGES_ENV MEM CPUS
#
# Environment (make passes them through):
#   CMD     a shell command for the guest; the last line printed is
#           "guest command exit status: N" and the script exits with N
#   ARGS    more govmm flags, split as a shell would (quotes work); files
#           they name are copied into the emulated machine at their paths
#   TESTVM  where govmm runs: auto (default), always (inside the emulated
#           machine), never (directly on this host's /dev/kvm)
#
# A full Linux guest needs hardware virtualization. On hosts with vmx or svm
# govmm runs directly. On PVM hosts (kvm_pvm) a stock kernel stops before
# user space, and on hosts without /dev/kvm govmm cannot run at all: there
# govmm runs inside testvm's emulated AMD SVM machine (QEMU TCG, nested
# KVM), through bin/testvm-run.
set -euo pipefail
govmm=$1 env=$2 mem=$3 cpus=$4
kernel=$(sed -n 's/^kernel=//p' "$env")
initrd=$(sed -n 's/^initrd=//p' "$env")
append="console=ttyS0 reboot=k panic=-1 quiet"

# ARGS is the user's own text, split with the shell's quoting rules.
eval "args=(${ARGS:-})"

# host: hardware, pvm, other (a /dev/kvm of another kind) or none.
host=none
if (exec 3<>/dev/kvm) 2>/dev/null; then
  if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -d /sys/module/kvm_intel -o -d /sys/module/kvm_amd ]; then
    host=hardware
  elif [ -d /sys/module/kvm_pvm ]; then
    host=pvm
  else
    host=other
  fi
fi

where=direct
case "${TESTVM:-auto}" in
  auto) [ "$host" = pvm ] || [ "$host" = none ] && where=testvm ;;
  always) where=testvm ;;
  never) where=direct ;;
  *) echo "make run: TESTVM=${TESTVM}: give auto, always or never" >&2; exit 2 ;;
esac

case "$host/$where" in
  pvm/testvm)
    echo "make run: PVM host (kvm_pvm): a stock kernel stops before user space here, so govmm runs in the emulated SVM machine (QEMU TCG, nested KVM; TESTVM=never runs it directly)" >&2 ;;
  none/testvm)
    echo "make run: this host has no usable /dev/kvm, so govmm runs in the emulated SVM machine (QEMU TCG, nested KVM)" >&2 ;;
  */testvm)
    echo "make run: TESTVM=always: govmm runs in the emulated SVM machine (QEMU TCG, nested KVM)" >&2 ;;
  none/direct)
    echo "make run: TESTVM=never, but this host has no usable /dev/kvm: load kvm_intel or kvm_amd, or leave TESTVM unset to use the emulated machine" >&2
    exit 1 ;;
  pvm/direct)
    echo "make run: TESTVM=never on a PVM host: guest ring 0 is emulated by KVM, so Linux prints its banner and memory map within seconds, then probes slowly and stops before user space; Ctrl-A x quits" >&2 ;;
esac

vmm=("$govmm")
if [ "$where" = testvm ]; then
  if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x bin/testvm-run ]; then
    echo "make run: the emulated machine needs qemu-system-x86 (make deps) and bin/testvm-run (make run builds it)" >&2
    exit 1
  fi
  vmm=(bin/testvm-run -copy-args -- "$govmm")
fi

if [ -n "${CMD:-}" ]; then
  set +e
  "${vmm[@]}" exec -kernel "$kernel" -initrd "$initrd" -mem "$mem" -cpus "$cpus" "${args[@]}" -- "$CMD"
  status=$?
  set -e
  echo "guest command exit status: $status"
  exit "$status"
fi
[ "$where" = direct ] && [ "$host" != pvm ] && echo "make run: booting $kernel with $mem of RAM; Ctrl-A x quits, 'exit' in the shell ends the VM" >&2
exec "${vmm[@]}" -kernel "$kernel" -initrd "$initrd" -mem "$mem" -cpus "$cpus" -append "$append" "${args[@]}"
