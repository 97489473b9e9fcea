# hotplugd: build, run and test.
#
#   make run    build, then run the daemon in the foreground on this machine, writing nothing (--dry-run)
#   make test   build, then run every test: unit and engine tests, real kernel uevents (as root),
#               and the acceptance suite, which boots a real kernel in QEMU and hot-adds into it
#   make e2e    the acceptance suite alone; one scenario: make e2e E2E_ARGS="-k coldplug"
#
# Missing Debian packages are installed when run as root; otherwise the command to do so is printed.

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
PYTHON ?= python3
DEB_PACKAGES := libudev-dev pkg-config
# The acceptance suite's guest: QEMU, busybox and cpio for the initramfs (the kernel and udevd
# are fetched with apt-get download into .cache/e2e).
E2E_PACKAGES := qemu-system-x86 busybox-static cpio
BIN := .build/debug/hotplugd
E2E_ARGS ?=

.PHONY: all deps e2e-deps install-packages build run test e2e clean

all: build

deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

e2e-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(E2E_PACKAGES)"
	@$(PYTHON) -m pytest --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pytest

install-packages:
	@missing=""; \
	for package in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

build: deps
	$(SWIFT) build

run: build
	$(BIN) run --dry-run --config config/hotplugd.toml

test: deps e2e-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test
	$(PYTHON) -m pytest -ra Tests/e2e $(E2E_ARGS)

e2e: deps e2e-deps
	$(PYTHON) -m pytest -ra Tests/e2e $(E2E_ARGS)

clean:
	rm -rf .build
