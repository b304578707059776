# avr-core — every target does its own set-up on a fresh Debian 12 machine with Swift.
SHELL := /bin/bash
SWIFT ?= swift
## Debian packages, by what needs them; each deps-* target installs only the missing ones.
##   APT_PACKAGES       the build and the server (`make run`)
##   TEST_APT_PACKAGES  the test peers and tools (`make test`, asan-integration, soak, vad-eval)
##   BENCH_APT          `make bench` on top of the tests' packages
APT_PACKAGES := libuv1-dev node-llhttp libhiredis-dev pkg-config libssl-dev libspeexdsp-dev ca-certificates
TEST_APT_PACKAGES := python3 python3-venv curl nodejs node-ws procps util-linux redis-server haproxy prometheus espeak-ng sox openssl
## The tests' Python modules live in a virtual environment, never in the system Python (Debian's
## refuses `pip install`: externally-managed-environment). It sees the system's site-packages,
## so modules Debian (or the machine) already has are used as they are; pip installs into .venv
## only what Tests/requirements.txt asks for and is missing. Every Python step below runs with
## .venv/bin first on PATH, so `python3` in scripts and in the unit tests is the venv's.
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python3
WITH_VENV := PATH=$(CURDIR)/$(VENV)/bin:$$PATH
PYTEST_ARGS ?=
INTEGRATION_TESTS ?= Tests/integration
PORT ?= 5001
HTTP_PORT ?= 6001
RELEASE_BIN := .build/release/avr-core
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# apt-get install of the listed packages that dpkg does not know as installed.
define apt_install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

.PHONY: all deps test-deps test-apt build release run test unit integration asan asan-integration bench bench-pipeline bench-quick bench-deps soak clean fuzz fuzz-build image-check vad-eval aec-compare fresh-check systemd-check

all: release

## deps: the Debian packages the build and the server need (only missing ones)
deps:
	$(call apt_install_missing,$(APT_PACKAGES))

## test-deps: deps, the tests' Debian packages, and the Python virtual environment .venv
test-deps: deps test-apt $(VENV)/.installed

test-apt: deps
	$(call apt_install_missing,$(TEST_APT_PACKAGES))

$(VENV)/.installed: Tests/requirements.txt | test-apt
	[ -x $(VENV)/bin/python3 ] || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import websockets, aiohttp, pytest, numpy, cryptography; from websockets.asyncio.server import serve" 2>/dev/null \
	  || $(PY) -m pip install -q --disable-pip-version-check -r Tests/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

## run: the server with working defaults (AudioSocket 5001, HTTP 6001); override with env
run: release
	PORT=$(PORT) HTTP_PORT=$(HTTP_PORT) ./$(RELEASE_BIN)

## test: unit tests (Swift Testing, under AddressSanitizer), then integration tests against the release binary
test: test-deps
	$(SWIFT) build -c release
	$(WITH_VENV) LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp $(SWIFT) test --sanitize=address --scratch-path .build-asan
	AVR_CORE_BIN=$(CURDIR)/$(RELEASE_BIN) $(PY) -m pytest -q -p no:cacheprovider $(INTEGRATION_TESTS) $(PYTEST_ARGS)

unit: test-deps
	$(WITH_VENV) $(SWIFT) test

integration: release test-deps
	AVR_CORE_BIN=$(CURDIR)/$(RELEASE_BIN) $(PY) -m pytest -q -p no:cacheprovider $(INTEGRATION_TESTS) $(PYTEST_ARGS)

## asan: unit tests under AddressSanitizer
asan: test-deps
	$(WITH_VENV) LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp $(SWIFT) test --sanitize=address --scratch-path .build-asan

## asan-integration: the integration suite against an AddressSanitizer build of the server
## (the RSS test is skipped: ASan's quarantine keeps freed memory on purpose; AVR_SANITIZED=1
## reports pacing-quality bounds instead of asserting them: see Tests/integration/helpers.py)
asan-integration: test-deps
	$(SWIFT) build --sanitize=address --scratch-path .build-asan
	$(WITH_VENV) ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan.supp AVR_SANITIZED=1 \
	  AVR_CORE_BIN=$(CURDIR)/.build-asan/debug/avr-core $(PY) -m pytest -q -p no:cacheprovider \
	  -k "not memory_stays_flat" Tests/integration

## vad-eval: the barge-in detector over the full set of espeak-ng mixes (docs/VAD.md): detection
## latency per mix, false triggers per minute on echo + noise and on noise alone.
## VAD_AGENT_DBFS sets the agent's level (its echo is 20 dB below it). The simulated phone lines
## (echo at ERL 6/10/15 dB, callers 10/16/20 dB under the agent) go through the echo canceller.
VAD_EVAL_DIR ?= /tmp/avr-vad-eval
VAD_AGENT_DBFS ?= -20
vad-eval: test-deps
	$(PY) Tests/vad/make_mixes.py $(VAD_EVAL_DIR) --agent-dbfs $(VAD_AGENT_DBFS)
	set -o pipefail; $(WITH_VENV) VAD_EVAL_DIR=$(VAD_EVAL_DIR) nice -n 10 $(SWIFT) test --filter 'VADEvaluationTests|EchoCancellerEvaluationTests' 2>&1 | grep -E 'VAD-EVAL|AEC-EVAL|passed|failed|error'

## aec-compare: the two echo cancellers Debian 12 packages, side by side on the simulated phone
## lines of the vad-eval mixes (docs/VAD.md, "Which canceller"): speexdsp's MDF (what the server
## runs) and the WebRTC audio processing module 0.3 (AEC, AECM); ERLE, convergence, double talk,
## the clipped echo, callgrind instructions per 20 ms. Built into .build/aec-compare, never part of
## the server or of `make test`. AEC_COMPARE_ARGS= (empty) skips the callgrind runs.
AEC_COMPARE_APT := libwebrtc-audio-processing-dev libspeexdsp-dev g++ pkg-config valgrind
AEC_COMPARE_ARGS ?= --callgrind
aec-compare: test-deps
	$(call apt_install_missing,$(AEC_COMPARE_APT))
	$(PY) Tests/vad/make_mixes.py $(VAD_EVAL_DIR) --agent-dbfs $(VAD_AGENT_DBFS)
	mkdir -p .build/aec-compare
	g++ -std=c++17 -O2 -o .build/aec-compare/aec_compare bench/aec_compare/aec_compare.cpp \
	  $$(pkg-config --cflags --libs webrtc-audio-processing speexdsp)
	nice -n 10 .build/aec-compare/aec_compare $(VAD_EVAL_DIR) $(AEC_COMPARE_ARGS)

clean:
	rm -rf .build .build-asan .build-fuzz .build-static .build-image

## image-check: the Dockerfile's runtime stage without a Docker engine: a debootstrap minbase
## bookworm root with the runtime stage's packages and user, the static binary, run in a chroot
## as that user (starts, /ready, one echo call, drains on SIGTERM). Root only; not run in CI
## (debootstrap downloads ~40 MB and takes minutes the first time); see README.
image-check: deps
	@command -v debootstrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	$(SUDO) deploy/image-check.sh

## fresh-check: `make run` and `make test` on a stock Debian 12 with only the Swift toolchain
## added: a debootstrap bookworm root (cached in .build-fresh/), a clone of HEAD, Debian's own
## python3 (deploy/fresh-check.sh). Root only; not in CI (downloads and builds everything).
## FRESH_TEST_ARGS go to `make test` there (e.g. INTEGRATION_TESTS=Tests/integration/test_http.py).
fresh-check:
	@command -v debootstrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	$(SUDO) env FRESH_TEST_ARGS='$(FRESH_TEST_ARGS)' deploy/fresh-check.sh

## systemd-check: deploy/avr-core.service through `systemd-analyze verify` (when installed; any
## message fails it), its drain/limits/hardening promises, the Dockerfile and compose checks
## (Tests/integration/test_deploy.py, also part of `make test`)
systemd-check: release test-deps
	AVR_CORE_BIN=$(CURDIR)/$(RELEASE_BIN) $(PY) -m pytest -q -p no:cacheprovider Tests/integration/test_deploy.py

## bench: release build, then the sweep avr-core vs the floor relay (N = 50..800, 20 s each), one table
## plus micro-benchmarks; results in bench/results/<timestamp>.json. Options: BENCH_ARGS="--loops 1,2";
## every N also runs avr-core with wss:// STS and https:// webhooks (haproxy terminates TLS)
BENCH_APT := valgrind wrk procps haproxy openssl
bench-deps: test-deps
	$(call apt_install_missing,$(BENCH_APT))

bench: bench-deps
	$(WITH_VENV) $(PY) bench/run.py --micro --tls $(BENCH_ARGS)

## bench-pipeline: pipeline mode (ASR/LLM/TTS bench services, bench/pipeline_services.js) at N = 100,400;
## compare with STS mode from `make bench` (same N)
bench-pipeline: bench-deps
	$(WITH_VENV) $(PY) bench/run.py --mode pipeline --calls 100,400 $(BENCH_ARGS)

## bench-quick: N = 50,200 for 10 s each, no micro-benchmarks
bench-quick: bench-deps
	$(WITH_VENV) $(PY) bench/run.py --calls 50,200 --duration 10 $(BENCH_ARGS)

## fuzz: libFuzzer + AddressSanitizer on every decoder that takes peer bytes (Tests/Fuzz).
## Each target runs FUZZ_SECONDS from a scratch copy of its seeds, FUZZ_JOBS at a time;
## fails if any target crashes (the artifact path is printed). FUZZ_TARGETS picks a subset.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_TARGETS ?=
FUZZ_NICE ?= 10
FUZZ_BUILD := AVR_FUZZ=1 nice -n 10 $(SWIFT) build -c debug --product avr-fuzz \
	--sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address \
	-Xcc -fsanitize=fuzzer-no-link,address --scratch-path .build-fuzz

fuzz-build: deps
	$(FUZZ_BUILD)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_NICE=$(FUZZ_NICE) Tests/Fuzz/run.sh $(FUZZ_TARGETS)

## soak: calls of random length arriving and ending (all codecs, DTMF, webhooks on) for
## SOAK_DURATION s at SOAK_CALLS concurrent calls (mean length SOAK_CHURN s), while the STS is
## SIGKILLed and restarted, the webhook receiver stalls, 2,000 idle connections sit on each
## port and the fd limit is lowered; exits non-zero on a violation; results in
## bench/results/soak-<timestamp>.json. Options: SOAK_ARGS="--loops 2 --content loud"
SOAK_DURATION ?= 60
SOAK_CALLS ?= 50
SOAK_CHURN ?= 10
soak: test-deps
	$(WITH_VENV) $(PY) bench/soak.py --duration $(SOAK_DURATION) --calls $(SOAK_CALLS) --churn $(SOAK_CHURN) $(SOAK_ARGS)
