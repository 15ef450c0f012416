# The two commands a newcomer needs: `make demo` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the tests drive for real: the phone's browser, a TURN server, and the network
# impairment rig's tools (bench/netem; NetfilterQueue builds against libnetfilter-queue-dev).
APT_PKGS := chromium coturn shellcheck nftables iptables libnetfilter-queue-dev gcc
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# Python trees that lint checks (bench/ joins once it exists).
LINT_DIRS := appliance tests $(wildcard bench)

.PHONY: all setup system-deps image-deps demo test test-fast lint bench bench-network soak image-smoke clean

all: test

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[box,test,bench]'
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

setup: $(STAMP) system-deps

demo: setup
	$(BIN)/appliance run --demo

test: setup lint
	bash tests/run.sh

# The unit tier only: no socket, no browser, seconds (tests/unit).
test-fast: $(STAMP)
	bash tests/run.sh tests/unit

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports

# Builds a Debian rootfs with the app layer and boots it under qemu (no network): image-build/README.md
image-smoke: setup image-deps
	timeout 1500 bash image-build/smoke/run.sh

bench: setup
	bash bench/run.sh $(BENCH_ARGS)

# The stream over a bad network (RFC 8867 5.1, 1 Mbit/s, 2 % loss at 80 ms RTT, a 10 s blackout)
# at 1080p and 720p, in headless Chromium; root, in its own loopback-only namespace (about 12 min).
bench-network: setup
	bash bench/network.sh bench.network $(BENCH_ARGS)

# An hour live at 1080p30 under RFC 8867 5.1 repeated: RSS, fds and threads over time.
soak: setup
	bash bench/network.sh bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench/results
