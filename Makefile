# hotplugd: build, run and test.
#
#   make run    build, then run the daemon in the foreground on this machine, writing nothing (--dry-run)
#   make test   build, then run every test (as root, this includes real kernel uevents)
#
# Missing Debian packages are installed when run as root; otherwise the command to do so is printed.

SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
DEB_PACKAGES := libudev-dev pkg-config
BIN := .build/debug/hotplugd

.PHONY: all deps build run test clean

all: build

deps:
	@missing=""; \
	for package in $(DEB_PACKAGES); do \
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

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

clean:
	rm -rf .build
