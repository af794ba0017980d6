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
exit $fail
