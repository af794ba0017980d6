#!/usr/bin/env bash
# Installs the Debian packages govmm's tests and benchmarks use, if missing.
#   gcc, binutils         build the test guests
#   lz4, xz-utils, zstd   compress the test guests' bzImage payloads
#   qemu-system-x86       the peer in `make bench`; on hosts without
#                         /dev/kvm, the emulated SVM machine the KVM tests
#                         run in (nested KVM)
#   busybox-static        the userland of that machine
#   ca-certificates       apt over https mirrors
#   acpica-tools          iasl and acpiexec, which check govmm's ACPI tables
#   e2fsprogs             mkfs.ext4 -d, e2fsck and debugfs: the ext4 disk
#                         make run-check gives the guest through -drive
set -euo pipefail
pkgs=(gcc binutils linux-libc-dev lz4 xz-utils zstd qemu-system-x86 busybox-static ca-certificates acpica-tools e2fsprogs)
# The gdb stub's test runs gdb; gdb-minimal (no Python) can be copied into
# testvm's machine. A gdb already installed is kept.
command -v gdb >/dev/null 2>&1 || pkgs+=(gdb-minimal)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# images/ resolves and downloads Debian's kernel with apt-cache and
# apt-get download, which need the package lists even when nothing is missing.
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
