"""Fixtures of the acceptance suite: the kernel and initramfs (built once per run) and guests."""

import contextlib
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import image  # noqa: E402
import vm  # noqa: E402


@pytest.fixture(scope="session")
def artifacts():
    return image.kernel(), image.initramfs()


@pytest.fixture(scope="session")
def systemd_artifacts():
    return image.systemd_guest()


@pytest.fixture
def boot(artifacts, request):
    """boot(append=..., smp=...) starts a guest that is stopped when the test ends. On failure
    the guest console and the daemon's log are kept and printed at the end of the run, where a
    log that shows only its tail still has them."""
    guests = []

    def start(initrd=None, start_timeout=120, **options):
        kernel, default_initrd = artifacts
        guest = vm.Guest(kernel, initrd or default_initrd, **options).start(timeout=start_timeout)
        guests.append(guest)
        return guest

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for guest in guests:
        if failed:
            DIAGNOSTICS.append((request.node.nodeid, guest.diagnostics()))
        with contextlib.suppress(Exception):
            guest.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


TIMES = []
FIGURES = []
DIAGNOSTICS = []


class Timer:
    """Measures, per scenario, the time from a hot-add (QMP device_add returned) to all devices
    online (seen by a guest-side loop polling sysfs every 5 ms); printed at the end of the run."""

    def __init__(self, label):
        self.label = label
        self.start = time.monotonic()

    def done(self):
        elapsed = time.monotonic() - self.start
        TIMES.append((self.label, elapsed))
        return elapsed


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for label, value in FIGURES:
            terminalreporter.write_line(f"{label:60} {value}")
    if TIMES:
        terminalreporter.section("time from hot-add to all online (TCG guest)")
        for label, elapsed in TIMES:
            terminalreporter.write_line(f"{label:60} {elapsed * 1000:8.0f} ms")
    for nodeid, text in DIAGNOSTICS:
        terminalreporter.section(f"guests of {nodeid}")
        terminalreporter.write_line(text)
