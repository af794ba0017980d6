#!/usr/bin/env bash
# make lint: the checks every change must pass before review, run by make
# test: gofmt, go vet, go mod tidy (go.mod and go.sum already tidy) and
# staticcheck, pinned here to one version so that every machine runs the
# same checks.
set -euo pipefail
cd "$(dirname "$0")/.."
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

fail=0
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "lint: gofmt would change these files (run gofmt -w on them):" >&2
  echo "$unformatted" | sed 's/^/  /' >&2
  fail=1
fi
go vet ./... || { echo "lint: go vet found problems (above)" >&2; fail=1; }
if ! tidy=$(go mod tidy -diff 2>&1); then
  echo "lint: go.mod or go.sum is not tidy (run go mod tidy):" >&2
  echo "$tidy" | sed 's/^/  /' >&2
  fail=1
fi
go run "$STATICCHECK" ./... || { echo "lint: staticcheck found problems (above)" >&2; fail=1; }
exit $fail
