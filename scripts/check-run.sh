#!/usr/bin/env bash
# make test's check of `make run CMD=...`, the CI user's command, end to
# end through make, on whatever host this is (inside the emulated machine
# where the host cannot run Linux to user space). Each case checks the
# command's output, the status line make run prints last, and make's own
# exit status (make can only say 0 or 2).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check NAME WANT_MAKE_STATUS WANT_GUEST_STATUS WANT_OUTPUT make-args...
# WANT_OUTPUT is the one line the command prints.
check() {
  local name=$1 want_make=$2 want_guest=$3 want_line=$4
  shift 4
  local start=$SECONDS
  make -s --no-print-directory run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local got_make=$?
  local last
  last=$(tail -n 1 "$tmp/out")
  local problems=()
  [ "$got_make" = "$want_make" ] || problems+=("make exited $got_make, want $want_make")
  [ "$last" = "guest command exit status: $want_guest" ] || problems+=("last line is \"$last\", want \"guest command exit status: $want_guest\"")
  # Standard output is the command's output and the status line, nothing
  # else: no boot lines, no carriage returns, no emulated machine's noise.
  printf '%s\nguest command exit status: %s\n' "$want_line" "$want_guest" >"$tmp/want"
  cmp -s "$tmp/out" "$tmp/want" || problems+=("standard output is not exactly \"$want_line\" and the status line")
  if [ ${#problems[@]} -gt 0 ]; then
    echo "FAIL make run $name:"
    printf '  %s\n' "${problems[@]}"
    echo "  stdout:"; sed 's/^/    /' "$tmp/out"
    echo "  stderr:"; tail -n 30 "$tmp/err" | sed 's/^/    /'
    fail=1
  else
    echo "ok   make run $name ($((SECONDS - start)) s)"
  fi
}

check "CMD with output and status 0" 0 0 "hello from make run" \
  CMD='echo hello from make run'
check "CMD that fails with status 3" 2 3 "before the failure" \
  CMD='echo before the failure; exit 3'
# A file named in ARGS must reach govmm at its path, also inside the
# emulated machine: a copy of the initrd outside the repository.
initrd=$(sed -n "s/^initrd=//p" "${GOVMM_CACHE:-.cache}/images.env")
cp "$initrd" "$tmp/copied-initrd.cpio"
check "ARGS naming a file" 0 0 "copied initrd booted" \
  ARGS="-initrd $tmp/copied-initrd.cpio -mem 256M" CMD='echo copied initrd booted'

# virtio-blk: the guest mounts an ext4 disk made on the host, reads the
# host's file, writes its own, syncs and unmounts; the host's e2fsck -fn
# is clean and debugfs reads the guest's file. In the emulated machine
# the disk is the host's own file, not a copy (testvm-run passes it
# through as a QEMU disk).
mkdir -p "$tmp/root"
echo "hello from the host" >"$tmp/root/hello.txt"
mkfs.ext4 -q -F -d "$tmp/root" "$tmp/disk.img" 32M >/dev/null
check "ARGS -drive: an ext4 disk made on the host" 0 0 "hello from the host" \
  ARGS="-drive file=$tmp/disk.img" \
  CMD='mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/hello.txt && echo "written by the guest" >/mnt/guest.txt && sync && umount /mnt'
if ! e2fsck -fn "$tmp/disk.img" >"$tmp/fsck" 2>&1; then
  echo "FAIL make run -drive: e2fsck -fn of the disk after the guest:"; sed 's/^/    /' "$tmp/fsck"; fail=1
elif [ "$(debugfs -R 'cat /guest.txt' "$tmp/disk.img" 2>/dev/null)" != "written by the guest" ]; then
  echo "FAIL make run -drive: the disk lacks the guest's /guest.txt"; fail=1
else
  echo "ok   make run -drive: e2fsck -fn clean, the guest's file on the host's disk"
fi

# descendant PID NAME: the first process named NAME below PID.
descendant() {
  local p
  for p in $(ps -o pid= --ppid "$1"); do
    if [ "$(ps -o comm= -p "$p")" = "$2" ]; then echo "$p"; return 0; fi
    descendant "$p" "$2" && return 0
  done
  return 1
}

# kill -9 right after the guest's sync loses nothing it synced: the VMM
# (govmm where it runs directly; the emulated machine's QEMU, with govmm
# in it, elsewhere) dies without a chance to write anything more.
start=$SECONDS
mkfs.ext4 -q -F -d "$tmp/root" "$tmp/disk2.img" 32M >/dev/null
mkfifo "$tmp/fifo"
make -s --no-print-directory run ARGS="-drive file=$tmp/disk2.img" \
  CMD='mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && seq 1 20000 >/mnt/synced.txt && sync && echo synced && sleep 600' \
  >"$tmp/fifo" 2>"$tmp/err2" </dev/null &
mk=$!
got=
while read -r line; do
  if [ "$line" = synced ]; then got=1; break; fi
done <"$tmp/fifo"
victim=$(descendant "$mk" govmm || descendant "$mk" qemu-system-x86)
[ -n "$got" ] && [ -n "$victim" ] && kill -9 "$victim"
wait "$mk" 2>/dev/null
cp "$tmp/disk2.img" "$tmp/replayed.img"
e2fsck -fy "$tmp/replayed.img" >"$tmp/fsck2" 2>&1 # replays the journal, as a mount would
if [ -z "$got" ] || [ -z "$victim" ]; then
  echo "FAIL make run -drive, kill -9 after sync: the guest never said synced, or no VMM to kill"; tail -n 20 "$tmp/err2" | sed 's/^/    /'; fail=1
elif [ "$(debugfs -R 'cat /synced.txt' "$tmp/replayed.img" 2>/dev/null | md5sum)" != "$(seq 1 20000 | md5sum)" ]; then
  echo "FAIL make run -drive, kill -9 after sync: the synced file is not whole on the host's disk"; sed 's/^/    /' "$tmp/fsck2"; fail=1
elif ! e2fsck -fn "$tmp/replayed.img" >"$tmp/fsck3" 2>&1; then
  echo "FAIL make run -drive, kill -9 after sync: e2fsck finds damage beyond the journal:"; sed 's/^/    /' "$tmp/fsck3"; fail=1
else
  echo "ok   make run -drive, kill -9 after sync: nothing synced was lost ($((SECONDS - start)) s)"
fi
exit $fail
