# Thin wrapper around CMake, ctest and pytest: deps, build, test, demo, bench.
# `make test` and `make demo` each work on a fresh Debian 12 machine.

PYTHON    ?= /usr/bin/python3
BUILD     ?= build
ASAN      ?= build-asan
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)

# Debian packages the build, the tests and the demo need.
DEB_PACKAGES = build-essential cmake pkg-config clang-format \
  libuv1-dev libcurl4-openssl-dev libssl-dev libyaml-dev libjansson-dev libxml2-dev \
  libcmocka-dev python3 python3-botocore python3-boto3 python3-pytest python3-yaml awscli \
  ca-certificates curl procps systemd man-db

.PHONY: all build deps test check-generated demo bench format format-check clean

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$(printf ' %s' $$missing)"; \
	  (apt-get install -y --no-install-recommends $$missing || \
	   (apt-get update && apt-get install -y --no-install-recommends $$missing)); \
	else echo "deps: missing packages; run as root:"; \
	  echo "  apt-get install -y --no-install-recommends$$(printf ' %s' $$missing)"; exit 1; fi

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# Every test, under AddressSanitizer + UBSan: generated files up to date, C unit
# tests (ctest), then the emulator's self-tests and the end-to-end tests (pytest)
# against the real binary.
test: deps check-generated
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DAVIARY_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j$(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS)
	AVIARY_BIN=$(CURDIR)/$(ASAN)/aviary ASAN_OPTIONS=detect_leaks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/emulator tests/e2e

# Generated sources and docs must match their generators.
check-generated:
	PYTHON=$(PYTHON) tools/check_generated.sh
	$(PYTHON) tools/gen_manifest_reference.py --check
	$(PYTHON) tools/gen_iam_policy.py --check

demo: deps build
	PYTHON=$(PYTHON) AVIARY_BIN=$(CURDIR)/$(BUILD)/aviary tools/demo.sh

# Benchmarks print figures (never asserted). BENCH_IDLE_SECONDS=10 shortens the
# idle-daemon measurement (default 60 s).
bench: deps build
	@for b in $(BUILD)/bench/bench_*; do [ -x "$$b" ] || continue; \
	  echo "== $$(basename $$b)"; $$b || exit 1; done
	AVIARY_BIN=$(CURDIR)/$(BUILD)/aviary $(PYTHON) tests/bench/bench_controller.py
	AVIARY_BIN=$(CURDIR)/$(BUILD)/aviary $(PYTHON) tests/bench/bench_application.py
	@[ ! -f tests/bench/bench_rollout.py ] || \
	  AVIARY_BIN=$(CURDIR)/$(BUILD)/aviary $(PYTHON) tests/bench/bench_rollout.py

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN)

# make install / uninstall (PREFIX, DESTDIR): binary, man page, systemd unit.
include deploy/install.mk
