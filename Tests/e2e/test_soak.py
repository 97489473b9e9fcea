"""Soak: DIMMs hot-added and hot-removed and a CPU taken offline and online over and over with the
daemon running: every cycle ends right, no event is lost, and the daemon's memory and open files
stay flat. And the guest nearly out of memory before a hot-add.

`make test` runs 20 cycles; `make soak` runs 200 (HOTPLUGD_SOAK_CYCLES).
"""

import os
import re

from conftest import FIGURES, Timer
from test_hotplug import start_daemon, userspace
from vm import MIB

CYCLES = int(os.environ.get("HOTPLUGD_SOAK_CYCLES", "20"))


def daemon_figures(guest):
    """Resident and locked memory (KiB) and open descriptors of the running daemon, once it is
    idle: the fewest descriptors of five looks 0.2 s apart (a write in progress holds one more)."""
    pid = guest.sh("cat /run/hotplugd.pid")
    status = guest.sh(f"cat /proc/{pid}/status")
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    locked = int(re.search(r"VmLck:\s+(\d+) kB", status).group(1))
    fds = min(int(guest.sh(f"sleep 0.2; ls /proc/{pid}/fd | wc -l")) for _ in range(5))
    return rss, locked, fds


def test_hot_add_and_remove_cycles(boot):
    """Each cycle: a 128 MiB DIMM hot-added, onlined, hot-removed; a hot-added CPU taken offline
    and put online again by somebody else. CPU hot-remove is done once, at the end: QEMU 7.2 under
    TCG crashes when a vCPU is added after one was removed (an assertion in tcg_register_thread,
    heap corruption or a segfault, depending on the -accel options), so it cannot be cycled."""
    guest = boot(smp="1,maxcpus=2")
    # hotplugd onlines the DIMM itself each cycle (kernel_online = false): its own writes are
    # what is counted.
    start_daemon(guest, config=userspace())
    guest.add_cpu(1)
    guest.sh("e2e wait-count 4 2 60")
    guest.sh("e2e wait-online 60")
    boot_blocks = {n for n in guest.devices() if n.startswith("memory")}
    baseline_blocks = len(boot_blocks)
    hot_blocks = set()
    samples = []
    timer = Timer(f"soak: {CYCLES} cycles of a 128 MiB DIMM added and removed, a CPU offlined and onlined")
    for cycle in range(CYCLES):
        dimm = guest.add_dimm(128 * MIB)
        guest.sh(f"e2e wait-count {baseline_blocks + 1} 2 60")
        guest.sh("e2e wait-online 60")
        hot_blocks |= {n for n in guest.devices() if n.startswith("memory")} - boot_blocks
        guest.sh("echo 0 > /sys/devices/system/cpu/cpu1/online")
        guest.del_dimm(dimm)
        guest.sh(f"e2e wait-count {baseline_blocks} 2 60")
        guest.sh("echo 1 > /sys/devices/system/cpu/cpu1/online")
        guest.sh(f"e2e wait-log-count 'cpu1 offline -> online' {cycle + 1} 30")
        if cycle == CYCLES // 4 or cycle == CYCLES - 1:
            samples.append(daemon_figures(guest))
    timer.done()
    guest.qmp("device_del", id="cpu-0-1-0")
    guest.sh(f"e2e wait-count {baseline_blocks} 1 60")

    log = guest.daemon_log()
    # Every hot-added block onlined once and its removal seen; every offline and online of the
    # CPU seen and the intent kept and dropped with it: nothing lost, nothing done twice.
    assert len(hot_blocks) == 1, f"the DIMM came back as other blocks: {hot_blocks}"
    hot_block = hot_blocks.pop()
    assert log.count(f"{hot_block} onlining -> online") == CYCLES, log[-3000:]
    assert log.count(f"{hot_block} offline -> removed") == CYCLES, log[-3000:]
    # One more offline: the kernel's own, before it ejected the CPU.
    assert log.count("cpu1 online -> offline") == CYCLES + 1, log[-3000:]
    assert log.count("cpu1 offline -> online") == CYCLES, log[-3000:]
    assert log.count("cpu1 onlining -> online") == 1, "the daemon onlined the CPU only when it was hot-added"
    assert "cpu1 offline -> removed" in log
    assert "kind=events-lost" not in log and " error " not in log and "-> failed" not in log
    (rss_early, locked, fds_early), (rss_late, _, fds_late) = samples
    FIGURES.append((f"soak: daemon after {CYCLES // 4 + 1} and {CYCLES} cycles",
                    f"RSS {rss_early} -> {rss_late} KiB, open files {fds_early} -> {fds_late}"))
    assert locked > 0, "the daemon's memory is not locked"
    # One more is allowed: libdispatch opens a timerfd (and signalfd) per clock the first time a
    # task sleeps on it, which a cycle may or may not cause. A leak per cycle would be many more.
    assert fds_late - fds_early <= 1, "descriptors leak: " + guest.sh(f"ls -l /proc/$(cat /run/hotplugd.pid)/fd")
    # Flat: what the first quarter settled at, give or take allocator noise.
    assert rss_late - rss_early < 1024, f"RSS grew from {rss_early} to {rss_late} KiB"


def test_hot_add_when_the_guest_is_nearly_out_of_memory(boot):
    """The situation hot-add exists for. The guest's memory is filled with tmpfs pages, which
    nothing can reclaim without swap, until 48 MiB are left; then a 1 GiB DIMM arrives."""
    guest = boot()
    # hotplugd's own onlining under pressure (kernel_online = false).
    start_daemon(guest, config=userspace())
    pid = guest.sh("cat /run/hotplugd.pid")
    guest.sh(f"echo -900 > /proc/{pid}/oom_score_adj")  # what the unit's OOMScoreAdjust= does
    available = int(re.search(r"MemAvailable:\s+(\d+) kB", guest.sh("cat /proc/meminfo")).group(1))
    fill_mib = available // 1024 - 48
    guest.sh(f"mkdir -p /fill && mount -t tmpfs -o size={fill_mib + 1}m fill /fill && "
             f"dd if=/dev/zero of=/fill/ballast bs=1048576 count={fill_mib} 2>/dev/null", timeout=300)
    left = int(re.search(r"MemAvailable:\s+(\d+) kB", guest.sh("cat /proc/meminfo")).group(1))
    assert left < 80 * 1024, f"{left} KiB still available"

    timer = Timer(f"memory pressure: 1 GiB DIMM with {left // 1024} MiB available")
    guest.add_dimm(1024 * MIB)
    guest.sh("e2e wait-count 12 1 120")
    guest.sh("e2e wait-online 120")
    timer.done()
    assert guest.sh(f"kill -0 {pid} && echo alive") == "alive"
    _, locked, _ = daemon_figures(guest)
    assert locked > 0
    after = int(re.search(r"MemAvailable:\s+(\d+) kB", guest.sh("cat /proc/meminfo")).group(1))
    assert after > left + 512 * 1024, f"the new memory is not usable: {left} -> {after} KiB available"
    log = guest.daemon_log()
    assert log.count("onlining -> online") == 8 and "-> failed" not in log, log
