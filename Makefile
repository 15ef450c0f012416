# The two commands a newcomer needs: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The unit tier's venv: the package (the box's and the relay's extras) and its test tools,
# nothing that needs a Debian package.
BASE_STAMP := $(VENV)/.installed-base
# Debian packages the tests drive for real: the phone's browser, a TURN server, and the network
# impairment rig's tools (bench/netem; NetfilterQueue builds against libnetfilter-queue-dev).
# redis-server: the relay's shared store, started by the tests on loopback, persisting nothing.
# haproxy: the reverse proxy in front of two relay processes in the failover tests (docs/relay.md).
# firefox-esr is the second browser engine (with libavcodec59, which its test-only H.264 uses).
APT_PKGS := chromium coturn shellcheck nftables iptables libnetfilter-queue-dev gcc firefox-esr libavcodec59 nodejs npm redis-server haproxy
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Python trees that lint checks (bench/ joins once it exists).
LINT_DIRS := appliance tests $(wildcard bench) $(wildcard fuzz)

.PHONY: all setup system-deps node-deps image-deps demo test test-fast lint bench bench-relay bench-sound bench-talkback bench-network soak soak-day image-smoke screenshots fuzz clean

all: test

$(BASE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[box,relay,test]'
	touch $@

$(STAMP): $(BASE_STAMP) | system-deps
	$(BIN)/python -m pip install -q -e '.[box,relay,test,rig,bench]'
	touch $@

# Installs Debian's chromium (and the other test tools) with apt-get when run as root and missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v shellcheck >/dev/null 2>&1 || missing="$$missing shellcheck"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || missing="$$missing libnetfilter-queue-dev"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	command -v firefox-esr >/dev/null 2>&1 || missing="$$missing firefox-esr"; \
	ls /usr/lib/*/libavcodec.so.59* >/dev/null 2>&1 || missing="$$missing libavcodec59"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v haproxy >/dev/null 2>&1 || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing (install them with apt-get as root)"; \
	  fi; \
	fi

# What `make image-smoke` needs on top: debootstrap, qemu, FAT tools.
IMAGE_PKGS := debootstrap qemu-system-x86 mtools dosfstools e2fsprogs fdisk
image-deps:
	@missing=""; \
	for p in debootstrap qemu-system-x86_64 mcopy mkfs.vfat mkfs.ext4 sfdisk; do \
	  command -v $$p >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $$p >/dev/null 2>&1 || missing=1; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(IMAGE_PKGS) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(IMAGE_PKGS) >/dev/null; \
	  else \
	    echo "missing: $(IMAGE_PKGS) (install them with apt-get as root)"; exit 1; \
	  fi; \
	fi

# puppeteer-core (drives firefox-esr in tests/browser/test_firefox.py) from the committed lock;
# it downloads no browser.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json | system-deps
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts
	touch $@
node-deps: $(NODE_STAMP)

setup: $(STAMP) system-deps node-deps

# DEMO_ARGS: more options for the demo, e.g. `make demo DEMO_ARGS=--qr` (the QR code when piped)
demo: setup
	$(BIN)/appliance run --demo $(DEMO_ARGS)

# The unit tier first and alone (no socket, no program, seconds: a broken rule fails fast; on two
# workers, pytest-xdist, under 20 s on a 2-core machine), then the integration tier (real sockets
# and servers on loopback) and the browsers.
UNIT_ARGS ?= -n 2
test: setup lint
	bash tests/run.sh tests/unit $(UNIT_ARGS)
	bash tests/run.sh tests/integration tests/browser tests/hw

# The unit tier only: installs nothing system-wide (no apt, no NetfilterQueue build).
test-fast: $(BASE_STAMP)
	bash tests/run.sh tests/unit $(UNIT_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

# Coverage-guided fuzzing (atheris) of the seal's decoders, the relay's handlers, the config
# loader and first boot's rewriter, FUZZ_SECONDS each, then the property-based tests with many
# more cases than in `make test` (HYPOTHESIS_PROFILE=fuzz). Findings are written to FUZZ_OUT.
FUZZ_SECONDS ?= 60
FUZZ_OUT ?= $${TMPDIR:-/tmp}/appliance-fuzz
fuzz: $(STAMP)
	@$(BIN)/python -c 'import atheris' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[fuzz]'
	@mkdir -p $(FUZZ_OUT)
	@for target in fuzz/fuzz_envelope.py fuzz/fuzz_relay.py fuzz/fuzz_config.py fuzz/fuzz_body.py; do \
	  echo "$$target: $(FUZZ_SECONDS) s"; \
	  PYTHONPATH=. $(BIN)/python $$target -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=$(FUZZ_OUT)/ > $(FUZZ_OUT)/last.log 2>&1; status=$$?; \
	  grep -E '^Done [0-9]+ runs' $(FUZZ_OUT)/last.log | sed "s|^|$$target: |"; \
	  if [ $$status -ne 0 ]; then tail -n 30 $(FUZZ_OUT)/last.log; exit $$status; fi; \
	done
	HYPOTHESIS_PROFILE=fuzz bash tests/run.sh -q -p no:cacheprovider --hypothesis-show-statistics \
	  tests/unit/test_envelope_properties.py tests/unit/test_relay_properties.py \
	  tests/unit/test_config_properties.py tests/unit/test_firstboot_properties.py \
	  tests/unit/test_jsonbody.py tests/unit/test_http_request.py \
	  | grep -E "passing examples|passed|failed"

# Builds a Debian rootfs with the app layer and boots it under qemu (no network): image-build/README.md
image-smoke: setup image-deps
	timeout 1500 bash image-build/smoke/run.sh

# PNGs of every viewer and staff screen, phone and tablet, French and English (docs/screens/).
# As root it runs in a loopback-only network namespace, like the tests.
screenshots: setup
	@if [ "$$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then \
	  unshare -n bash -c 'ip link set lo up && exec $(BIN)/python -m tests.support.screenshots docs/screens'; \
	else \
	  $(BIN)/python -m tests.support.screenshots docs/screens; \
	fi

bench: setup
	bash bench/run.sh $(BENCH_ARGS)

# The sound in headless Chromium on loopback: capture-to-ear latency (the synthetic clicks found
# by an AudioWorklet), the audio/video offset (click vs. the picture's marker frame), and the
# sound's added CPU and RSS against the same run without sound (about 2 min).
bench-sound: setup
	bash bench/run.sh bench.sound $(BENCH_ARGS)

# Talk-back's latency: Chromium's fake microphone (a burst a second) held to the box's speaker
# (an ALSA file PCM over null), the onsets timed at both ends (bench/talkback.py, about 1 min).
bench-talkback: setup
	bash bench/run.sh bench.talkback $(BENCH_ARGS)

# The stream over a bad network (RFC 8867 5.1, 1 Mbit/s, 2 % loss at 80 ms RTT, a 10 s blackout)
# at 1080p and 720p, in headless Chromium; root, in its own loopback-only namespace (about 12 min).
bench-network: setup
	bash bench/network.sh bench.network $(BENCH_ARGS)

# An hour live at 1080p30 under RFC 8867 5.1 repeated: RSS (and where it went: the Python heap,
# malloc's bytes in use or kept by the allocator), fds and threads over time.
soak: setup
	bash bench/network.sh bench.soak $(SOAK_ARGS)

# A clinic's day: exams back to back on one box for an hour (session opened, Chromium admitted,
# RFC 8867 5.1's steps, session ended); passes when every exam's end RSS is within 5 % of the
# first's. SOAKDAY_ARGS="--minutes 120" for a longer day.
soak-day: setup
	bash bench/network.sh bench.soakday $(SOAKDAY_ARGS)

# The relay under a clinic group's load (bench/relayload.py): 1,000 rooms with their box's poll
# waiting and 1,000 viewers, a dozen messages each way at 200 messages/s, on one process and on
# two behind HAProxy on Redis (one killed part way); a table, JSON and a PNG in bench/results.
# RELAY_ARGS="--rooms 300 --processes 1" for a shorter run.
bench-relay: setup
	bash bench/network.sh bench.relayload $(RELAY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
