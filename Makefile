# hotplugd: build, run and test.
#
#   make run    build, then run the daemon in the foreground on this machine, writing nothing (--dry-run)
#   make test   build, then run every test: unit and engine tests, real kernel uevents (as root),
#               and the acceptance suite, which boots a real kernel in QEMU and hot-adds into it
#   make e2e    the acceptance suite alone; one scenario: make e2e E2E_ARGS="-k coldplug"
#   make bench  hotplugd against the kernel's auto-online and udevd, and its own costs: BENCHMARKS.md
#   make fuzz   libFuzzer over the uevent path and the configuration parser (FUZZ_SECONDS each)
#   make sanitize   the unit tests under AddressSanitizer, then ThreadSanitizer
#   make soak   SOAK_CYCLES (200) hot-add and hot-remove cycles in a guest (make test runs 20)
#   make format   lay the Swift code out as .swift-format says (make test checks it)
#   make install / make uninstall   (PREFIX=/usr/local, DESTDIR=)
#   make deb    the Debian package, hotplugd_VERSION_ARCH.deb, in .build/deb (README.md)
#
# Missing Debian packages are installed when run as root; otherwise the command to do so is printed.

SHELL := /bin/bash
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
PYTHON ?= python3
# zsh and fish: the completion tests load the generated scripts in each shell.
DEB_PACKAGES := libudev-dev libsystemd-dev pkg-config zsh fish
# For `make deb`, and for the acceptance suite, which builds the package and runs lintian on it.
DEB_BUILD_PACKAGES := debhelper dpkg-dev lintian
# The one version, of the binary (Plugins/VersionFromFile), the man pages and the package.
VERSION := $(shell cat VERSION)
DEB_DIR ?= .build/deb
# The acceptance suite's guest: QEMU, busybox and cpio for the initramfs (the kernel and udevd
# are fetched with apt-get download into .cache/e2e).
E2E_PACKAGES := qemu-system-x86 busybox-static cpio debootstrap e2fsprogs
BIN := .build/debug/hotplugd
E2E_ARGS ?=
BENCH_ARGS ?=
SOAK_CYCLES ?= 200
FUZZ_SECONDS ?= 600
# How long each target runs; `make test` gives a fixed seed and count instead, so that its
# result is the same on every run.
FUZZ_LIMIT ?= -max_total_time=$(FUZZ_SECONDS)
# Where new inputs go (the committed seeds in Tests/Fuzz/corpus are only read).
FUZZ_WORK ?= .cache/fuzz
FUZZ_TARGETS := uevent config
# A build of its own for each instrumentation, so that none clobbers the ordinary one.
FUZZ_BUILD := .build-fuzz
# Leaks that are not ours (see the file).
export LSAN_OPTIONS := suppressions=$(CURDIR)/Tests/Sanitizers/lsan.supp:print_suppressions=0
# In `sanitize`, every report goes to a file of its own, from the test process and from every
# hotplugd it runs, and they are printed after the run, which then fails: at the end of the
# output, where a reader of a failed run looks, not among a thousand lines of passed tests.
SANITIZER_REPORTS := $(CURDIR)/.build-sanitizer-reports
SANITIZER_LOGS := ASAN_OPTIONS=log_path=$(SANITIZER_REPORTS)/asan TSAN_OPTIONS=log_path=$(SANITIZER_REPORTS)/tsan
# The suites that make real uevents on this machine: run one at a time, after the rest (see test).
KERNEL_SUITES := RealKernelTests|ForgedUeventTests|StormTests|ControlSocketTests
# Not under the sanitizers: the tests that bound wall-clock time (a sanitized build is several
# times slower), and partlyDoneIsThree, which runs the binary under a 10-byte file size limit
# that the sanitizers' own runtime files cannot live with.
SANITIZE_SKIP := aHookThatOutlivesItsTimeoutIsStopped|anAddGoesOnAfterAShortQuietUnlessTheKernelsBurstIsHeld|aDeadlineWithNothingQueuedIsReportedOnTime|aLongDIMMKeepsTheHeartbeatAndStopsOnTime|StormTests|partlyDoneIsThree

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
RELEASE_BIN := .build/release/hotplugd
# Stripped: the symbols are a third of the binary and of no use to a running daemon. The package
# build sets it empty, so that dh_strip moves them into the -dbgsym package.
INSTALL_STRIP ?= -s

.PHONY: all deps e2e-deps install-packages build release run test test-instrumented test-acceptance e2e bench fuzz sanitize soak install uninstall deb clean format format-check

all: build

deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

e2e-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(E2E_PACKAGES) $(DEB_BUILD_PACKAGES)"
	@$(PYTHON) -m pytest --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet pytest
	@$(PYTHON) -c "import matplotlib" 2>/dev/null || $(PYTHON) -m pip install --quiet matplotlib

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

test: deps e2e-deps format-check
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip "$(KERNEL_SUITES)"
	@# One at a time, after the rest: their uevent floods load both cores and would make other
	@# suites' time bounds flaky, and each other's monitors hear them.
	$(SWIFT) test --no-parallel --filter "$(KERNEL_SUITES)"
	@# The instrumented builds and runs beside the acceptance suite, on the core its guests mostly
	@# leave idle (TCG runs a 1-vCPU guest on one thread); each one's output is printed whole when
	@# it ends. The two share no files, and neither has a time bound that load could break (the
	@# sanitized runs skip the tests that have one; the guests' waits are for events, not times).
	$(MAKE) --no-print-directory -j2 --output-sync=target test-instrumented test-acceptance

test-instrumented:
	$(MAKE) --no-print-directory sanitize
	rm -rf $(FUZZ_BUILD)/test-corpus
	$(MAKE) --no-print-directory fuzz FUZZ_LIMIT="-runs=25000 -seed=1" FUZZ_WORK=$(FUZZ_BUILD)/test-corpus

# --durations: the slowest scenarios, for whoever keeps `make test` within its time.
test-acceptance:
	$(PYTHON) -m pytest -ra --durations=12 Tests/e2e $(E2E_ARGS)

# The code as swift-format (in the toolchain) lays it out, by .swift-format; `make format` applies it.
format-check:
	$(SWIFT) format lint --strict --recursive Sources Tests Plugins Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Plugins Package.swift

# Unit, core and driver tests again, under each sanitizer (a full build each, in .build-asan, .build-tsan);
# the suites that make real uevents one at a time after the rest, as in test.
sanitize: deps
	rm -rf $(SANITIZER_REPORTS) && mkdir -p $(SANITIZER_REPORTS)
	$(SANITIZER_LOGS) $(SWIFT) test --sanitize=address --build-path .build-asan --skip "$(SANITIZE_SKIP)|$(KERNEL_SUITES)" \
	  || { Tests/Sanitizers/reports.sh $(SANITIZER_REPORTS); exit 1; }
	$(SANITIZER_LOGS) $(SWIFT) test --sanitize=address --build-path .build-asan --no-parallel --filter "$(KERNEL_SUITES)" \
	  --skip "$(SANITIZE_SKIP)" || { Tests/Sanitizers/reports.sh $(SANITIZER_REPORTS); exit 1; }
	$(SANITIZER_LOGS) $(SWIFT) test --sanitize=thread --build-path .build-tsan --skip "$(SANITIZE_SKIP)|$(KERNEL_SUITES)" \
	  || { Tests/Sanitizers/reports.sh $(SANITIZER_REPORTS); exit 1; }
	$(SANITIZER_LOGS) $(SWIFT) test --sanitize=thread --build-path .build-tsan --no-parallel --filter "$(KERNEL_SUITES)" \
	  --skip "$(SANITIZE_SKIP)" || { Tests/Sanitizers/reports.sh $(SANITIZER_REPORTS); exit 1; }
	@Tests/Sanitizers/reports.sh $(SANITIZER_REPORTS)


# New inputs go to $(FUZZ_WORK)/TARGET and crashes to $(FUZZ_WORK)/crash-*: replay one with
# `swift run fuzz-config FILE`.
fuzz: deps
	@set -o pipefail; for target in $(FUZZ_TARGETS); do \
	  $(SWIFT) build --build-path $(FUZZ_BUILD) -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
	    --product fuzz-$$target 2>&1 | { grep -v "Cannot export local symbol" || true; } || exit 1; \
	done
	@set -o pipefail; for target in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_WORK)/$$target; \
	  echo "fuzz-$$target: $(FUZZ_LIMIT)"; \
	  $(FUZZ_BUILD)/debug/fuzz-$$target $(FUZZ_LIMIT) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_WORK)/ $(FUZZ_WORK)/$$target Tests/Fuzz/corpus/$$target 2>&1 \
	    | { grep -E "^#[0-9]+ +DONE|^stat::number_of_executed_units|^stat::peak_rss|ERROR|SUMMARY|Test unit written" || true; } \
	    || exit 1; \
	done

e2e: deps e2e-deps
	$(PYTHON) -m pytest -ra Tests/e2e $(E2E_ARGS)

soak: deps e2e-deps
	HOTPLUGD_SOAK_CYCLES=$(SOAK_CYCLES) $(PYTHON) -m pytest -ra Tests/e2e/test_soak.py -k cycles

# Takes about 110 minutes: fresh guests for every figure, three runs each. BENCH_ARGS="--runs 1" is quicker.
bench: deps e2e-deps
	$(PYTHON) Tests/Benchmarks/bench.py $(BENCH_ARGS)

# A release build with the Swift runtime linked in: it needs only libc, libstdc++, libudev and
# libsystemd on the target machine.
release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product hotplugd

install: release
	install -D $(INSTALL_STRIP) -m 0755 $(RELEASE_BIN) $(DESTDIR)$(BINDIR)/hotplugd
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/hotplugd|$(BINDIR)/hotplugd|' systemd/hotplugd.service > $(DESTDIR)$(UNITDIR)/hotplugd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hotplugd.service
	@# An existing configuration is the administrator's: never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/hotplugd/hotplugd.toml || \
	  install -D -m 0644 config/hotplugd.toml $(DESTDIR)$(SYSCONFDIR)/hotplugd/hotplugd.toml
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	sed 's|@VERSION@|$(VERSION)|' Sources/hotplugd/man/hotplugd.8 > $(DESTDIR)$(MANDIR)/man8/hotplugd.8
	sed 's|@VERSION@|$(VERSION)|' Sources/hotplugd/man/hotplugd.toml.5 > $(DESTDIR)$(MANDIR)/man5/hotplugd.toml.5
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/hotplugd.8 $(DESTDIR)$(MANDIR)/man5/hotplugd.toml.5
	install -d $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	@# Without the generator's #!/bin/bash: bash sources the file, it never runs it.
	$(RELEASE_BIN) --generate-completion-script bash | sed '1{/^#!/d}' > $(DESTDIR)$(BASHCOMPDIR)/hotplugd
	$(RELEASE_BIN) --generate-completion-script zsh > $(DESTDIR)$(ZSHCOMPDIR)/_hotplugd
	$(RELEASE_BIN) --generate-completion-script fish > $(DESTDIR)$(FISHCOMPDIR)/hotplugd.fish

# Removes what install put there, except the configuration.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hotplugd $(DESTDIR)$(UNITDIR)/hotplugd.service \
	  $(DESTDIR)$(MANDIR)/man8/hotplugd.8 $(DESTDIR)$(MANDIR)/man5/hotplugd.toml.5 \
	  $(DESTDIR)$(BASHCOMPDIR)/hotplugd $(DESTDIR)$(ZSHCOMPDIR)/_hotplugd $(DESTDIR)$(FISHCOMPDIR)/hotplugd.fish

# The Debian package (and its -dbgsym) in DEB_DIR, by debian/rules. Not dpkg-buildpackage, which
# writes into the parent directory. debian/changelog is written from VERSION, dated by the last
# commit so that one commit builds the same package.
deb: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_BUILD_PACKAGES)"
	dpkg-checkbuilddeps
	{ printf 'hotplugd (%s) unstable; urgency=medium\n\n' '$(VERSION)'; \
	  printf '  * Version %s. The changes are in the project history.\n\n' '$(VERSION)'; \
	  printf ' -- %s  %s\n' "$$(sed -n 's/^Maintainer: //p' debian/control)" \
	    "$$(git log -1 --format=%cD 2>/dev/null || date -R)"; } > debian/changelog
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	@# What debhelper left from the last build (dh_clean would also walk .build and .cache).
	rm -rf debian/hotplugd debian/hotplugd-dbgsym debian/.debhelper debian/debhelper-build-stamp debian/files \
	  debian/*.substvars debian/*.debhelper debian/*.debhelper.log
	DEB_RULES_REQUIRES_ROOT=no DEB_DIR=$(abspath $(DEB_DIR)) debian/rules binary
	@for deb in $(DEB_DIR)/*.deb; do \
	  echo "$$deb: $$(stat -c %s $$deb) bytes, Installed-Size $$(dpkg-deb -f $$deb Installed-Size) KiB"; \
	done

clean:
	rm -rf .build
