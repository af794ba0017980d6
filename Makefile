# govmm's entry points. See README.md.
#
#   make run     build govmm and the default Linux guest, boot it to a shell;
#                make run CMD='...' runs a command in a fresh guest instead
#   make test    what CI runs: lint, unit tests, the tests that run guests,
#                and make run CMD=... end to end
#   make bench   side-by-side measurements (a program, not a test)

GO     ?= go
CACHE  ?= $(CURDIR)/.cache
MEM    ?= 512M
CPUS   ?= 1
GOVMM  := bin/govmm
IMAGES := $(CACHE)/images.env

# Test binaries must be static: on hosts without /dev/kvm they run inside
# an emulated machine that has nothing but busybox.
export CGO_ENABLED := 0
export GOVMM_CACHE := $(CACHE)

# Packages whose tests run guests on KVM.
KVM_PKGS := ./kvm/... ./vcpu/... ./machine/... ./cmd/govmm/... ./snapshot/... ./migration/... ./api/...

# make run's knobs (scripts/run.sh): CMD runs a command instead of a shell,
# ARGS adds govmm flags, TESTVM=auto|always|never says where govmm runs.
export CMD ARGS TESTVM

.PHONY: all build deps images guests run run-check test lint unit kvm-test firecracker-sdk-test bench fuzz clean

all: build

build:
	$(GO) build -o $(GOVMM) ./cmd/govmm

# Debian packages for the tests and benchmarks (idempotent).
deps:
	./scripts/deps.sh

# The default Linux guest: Debian's cloud kernel and the u-root initrd.
# GENERIC=1 also fetches Debian's generic kernel, a fixture of the tests.
images:
	@mkdir -p $(CACHE)
	$(GO) run ./images/cmd/mkimages -cache $(CACHE) $(if $(GENERIC),-generic) > $(IMAGES).tmp
	@mv $(IMAGES).tmp $(IMAGES)
	@cat $(IMAGES) >&2

# The project's own test guests (gcc), into the cache.
guests:
	$(GO) run ./images/testguest/cmd/mkguests -cache $(CACHE)

# Where the host cannot run Linux to user space (PVM, or no /dev/kvm),
# run.sh runs govmm inside testvm-run's emulated SVM machine.
run: build images
	@$(GO) build -o bin/testvm-run ./testvm/cmd/testvm-run
	@./scripts/run.sh $(GOVMM) $(IMAGES) $(MEM) $(CPUS)

test: deps guests
	$(MAKE) images GENERIC=1
	./scripts/lint.sh
	$(MAKE) unit
	$(MAKE) kvm-test
	$(MAKE) firecracker-sdk-test
	$(MAKE) run-check

# gofmt, go vet, go mod tidy and staticcheck (pinned in the script).
lint:
	./scripts/lint.sh

# make run CMD=... end to end, the way a CI user calls it.
run-check:
	./scripts/check-run.sh

# Everything, natively, with the tests that need KVM skipped.
unit:
	GOVMM_SKIP_KVM=1 $(GO) test -count=1 -timeout 20m ./...

# The tests that run guests. testvm-exec runs each test binary directly
# where KVM has hardware virtualization; on PVM hosts it runs it directly
# and then, inside an emulated SVM machine with nested KVM, the tests that
# boot Linux to user space (kvmtest.RequireLinux lists them); without
# /dev/kvm it runs it entirely in that machine. GOVMM_REQUIRE_KVM=1 turns
# every KVM skip into a failure.
kvm-test:
	$(GO) build -o bin/testvm-exec ./testvm/cmd/testvm-exec
	GOVMM_REQUIRE_KVM=1 $(GO) test -count=1 -timeout 15m -exec $(CURDIR)/bin/testvm-exec $(KVM_PKGS)

# Firecracker's Go SDK (v1.0.0) driving govmm, in a module of its own
# (firecracker/sdktest) so the SDK stays out of govmm's go.mod. The SDK
# starts bin/govmm as "firecracker"; testvm-exec copies it into the
# emulated machine for the test that boots Linux.
firecracker-sdk-test: build
	$(GO) build -o bin/testvm-exec ./testvm/cmd/testvm-exec
	cd firecracker/sdktest && GOVMM_REQUIRE_KVM=1 GOVMM_FIRECRACKER_BIN=$(CURDIR)/$(GOVMM) GOVMM_TESTVM_FILES=$(CURDIR)/$(GOVMM) \
		$(GO) test -count=1 -timeout 15m -exec $(CURDIR)/bin/testvm-exec ./...

bench: build
	$(GO) run ./bench -govmm $(GOVMM) -cache $(CACHE)

# A short run of every fuzz target (make fuzz FUZZTIME=5m for longer).
FUZZTIME ?= 15s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
