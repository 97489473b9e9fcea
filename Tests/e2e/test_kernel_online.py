"""Acceptance: kernel mode (memory.kernel_online, the default). hotplugd gives the kernel its
memory policy (auto_online_blocks and memory_hotplug's online_policy and auto-movable knobs), the
kernel onlines each block inside the add, and hotplugd gives the kernel's own settings back when it
stops cleanly. And virtio-mem, whose blocks its driver adds and takes back itself.
"""

import re
import time

from conftest import FIGURES, Timer
from test_hotplug import (AUTO_MOVABLE_KERNEL, BOOT_SETTINGS, DIMM_SEQUENCE, EXPECTED_ZONES, RECORD, RESTORED_LINE,
                          add_dimms_in_sequence, assert_logged_online, hot_blocks, kernel_alone, kernel_settings,
                          memory, mode_line, start_daemon, userspace)
from vm import GIB, MIB

# What hotplugd's default policy (auto-movable, ratio 301, NUMA-aware) has the kernel read.
KERNEL_MODE_SETTINGS = {"auto_online_blocks": "online", "online_policy": "auto-movable",
                        "auto_movable_ratio": "301", "auto_movable_numa_aware": "Y"}
GUEST_BOOT_SETTINGS = {**BOOT_SETTINGS, "auto_movable_ratio": "301", "auto_movable_numa_aware": "Y"}
NODE_RULE = '[memory]\n[[memory.node]]\nnode = 0\nonline_type = "online_movable"'


def record(guest):
    """The lines of /run/hotplugd/kernel-online (comments left out); None when there is none."""
    text = guest.sh(f"cat {RECORD} 2>/dev/null || echo absent")
    return None if text == "absent" else [line for line in text.splitlines() if not line.startswith("#")]


def logged_zone(log, device):
    """The zone= of the line that logged `device` online."""
    for line in log.splitlines():
        if re.search(rf"(^|\s){device} (onlining|offline) -> online\b", line):
            found = re.search(r"\bzone=(\w+)", line)
            return found.group(1) if found else None
    return None


def kill_daemon(guest):
    """SIGKILL, and waits until the process is gone (or a zombie nobody reaped yet)."""
    guest.sh("pid=$(cat /run/hotplugd.pid); kill -KILL $pid; "
             "while [ -e /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null; do sleep 0.01; done")


def reload_daemon(guest, config):
    """Writes the configuration and sends SIGHUP; waits for the mode line that follows."""
    lines = guest.sh("cat /var/log/hotplugd.log 2>/dev/null | grep -c 'memory onlining: ' || true")
    guest.sh(f"cat > /etc/hotplugd/hotplugd.toml <<'EOF'\n{config}\nEOF")
    guest.sh(f"e2e signal HUP; e2e wait-log-count 'memory onlining: ' {int(lines) + 1} 10")


def test_kernel_mode_sets_the_policy_and_gives_the_settings_back(boot):
    guest = boot()
    assert kernel_settings(guest) == GUEST_BOOT_SETTINGS

    # (a) Started with the default configuration: the kernel carries out auto-movable.
    start_daemon(guest)
    line = mode_line(guest)
    for field in ["mode=kernel", *(f"{key}={value}" for key, value in KERNEL_MODE_SETTINGS.items())]:
        assert field in line, line
    assert kernel_settings(guest) == KERNEL_MODE_SETTINGS
    # Only what hotplugd changed is recorded, with the value it found.
    assert record(guest) == ["auto_online_blocks offline", "online_policy contig-zones"]
    zones = add_dimms_in_sequence(guest, "kernel mode: default configuration")
    assert [zones for _, zones in sorted(zones.items())] == [{zone} for zone in EXPECTED_ZONES]
    log = guest.daemon_log()
    blocks = hot_blocks(guest)
    assert_logged_online(guest, [name for name, _ in blocks], log, by="kernel")
    for name, (_, zone, _) in blocks:
        assert logged_zone(log, name) == zone, f"{name} is in {zone}, logged as {logged_zone(log, name)}"

    # A clean stop gives the kernel its own settings back.
    guest.sh(f"e2e signal TERM; e2e wait-log '{RESTORED_LINE}' 10; e2e wait-log 'stopping' 10")
    assert kernel_settings(guest) == GUEST_BOOT_SETTINGS
    assert record(guest) is None
    restored = next(line for line in guest.daemon_log().splitlines() if RESTORED_LINE in line)
    assert "auto_online_blocks=offline" in restored and "online_policy=contig-zones" in restored, restored

    # (b) Killed: the kernel keeps onlining by hotplugd's policy, the record stays.
    guest.sh(": > /var/log/hotplugd.log")
    start_daemon(guest)
    assert "mode=kernel" in mode_line(guest)
    kill_daemon(guest)
    assert kernel_settings(guest) == KERNEL_MODE_SETTINGS
    assert record(guest) == ["auto_online_blocks offline", "online_policy contig-zones"]
    total = len(memory(guest))
    timer = Timer("kernel mode: 256 MiB DIMM with no daemon running")
    guest.add_dimm(256 * MIB)
    guest.sh(f"e2e wait-count {total + 2} 1 60; e2e wait-online 60")
    timer.done()
    # 1.5 GiB is Movable already, at the ratio's limit: the kernel puts the DIMM in Normal, whole.
    late = [value for _, value in hot_blocks(guest) if value[2] == "PNP0C80:03"]
    assert [(state, zone) for state, zone, _ in late] == [("online", "Normal")] * 2, late

    # The next start takes the found values from the record, so a clean stop puts back the
    # kernel's own values, not the ones the killed hotplugd had set.
    start_daemon(guest)
    log = guest.daemon_log()
    taken = [line for line in log.splitlines() if "taking over the kernel memory onlining settings" in line]
    assert taken and "auto_online_blocks=offline" in taken[0] and "online_policy=contig-zones" in taken[0], log
    assert "mode=kernel" in mode_line(guest, log)
    assert record(guest) == ["auto_online_blocks offline", "online_policy contig-zones"]
    guest.sh(f"e2e signal TERM; e2e wait-log '{RESTORED_LINE}' 10; e2e wait-log 'stopping' 10")
    assert kernel_settings(guest) == GUEST_BOOT_SETTINGS
    assert record(guest) is None
    log = guest.daemon_log()
    assert " error " not in log and "-> failed" not in log, log


def test_a_node_rule_the_kernel_cannot_say_keeps_onlining_in_hotplugd(boot):
    guest = boot()
    # (c) Node 0 online_movable while [memory] is auto-movable: the kernel has one setting for
    # every node, so hotplugd onlines itself and auto_online_blocks stays as found. (It may still
    # set the auto-movable parameters, for the kernel to pick the zone of blocks hotplugd writes
    # `online`; a clean stop gives them back.)
    start_daemon(guest, config=NODE_RULE)
    line = mode_line(guest)
    assert "mode=userspace" in line and "memory.node rule for node 0" in line, line
    assert kernel_settings(guest)["auto_online_blocks"] == "offline"
    zones = add_dimms_in_sequence(guest, "node rule: hotplugd onlines", sizes=[2 * GIB])
    # online_movable for node 0, over the ratio as well.
    assert list(zones.values()) == [{"Movable"}]
    assert_logged_online(guest, [name for name, _ in hot_blocks(guest)], by="hotplugd")

    # A reload without the rule hands onlining to the kernel...
    reload_daemon(guest, "")
    assert "mode=kernel" in mode_line(guest)
    assert kernel_settings(guest) == KERNEL_MODE_SETTINGS
    assert record(guest) == ["auto_online_blocks offline", "online_policy contig-zones"]
    zones = add_dimms_in_sequence(guest, "node rule dropped by a reload: the kernel onlines", sizes=[512 * MIB])
    # 2 GiB Movable already, over the ratio: the kernel zone.
    assert zones["PNP0C80:01"] == {"Normal"}
    assert_logged_online(guest, [name for name, (_, _, dimm) in hot_blocks(guest) if dimm == "PNP0C80:01"],
                         by="kernel")
    # ...and one with it takes it back: auto_online_blocks as found again.
    reload_daemon(guest, NODE_RULE)
    line = mode_line(guest)
    assert "mode=userspace" in line and "memory.node rule for node 0" in line, line
    assert kernel_settings(guest)["auto_online_blocks"] == "offline"
    guest.sh(f"e2e signal TERM; e2e wait-log 'stopping' 10")
    assert kernel_settings(guest) == GUEST_BOOT_SETTINGS
    assert record(guest) is None
    log = guest.daemon_log()
    assert " error " not in log and "-> failed" not in log, log


# virtio-mem: a 4 GiB device on node 0 with nothing plugged at boot, grown to 2 GiB.
VIRTIO_MEM = (0, 4 * GIB)
GROWN = 2 * GIB
BOOT_BLOCKS = 4


def virtio_blocks(guest):
    """{block: (state, zone)} of the virtio-mem device's blocks: neither boot memory nor a DIMM."""
    return {name: (state, zone) for name, (state, zone, dimm) in memory(guest).items()
            if dimm == "-" and int(name[6:]) >= BOOT_BLOCKS}


def grow(guest, label):
    """Plugs GROWN bytes; returns {block: zone} once every block is online."""
    timer = Timer(f"virtio-mem: {label}: grow to {GROWN // MIB} MiB")
    guest.request_virtio_mem(GROWN)
    guest.wait_virtio_mem(GROWN)
    guest.sh(f"e2e wait-count {BOOT_BLOCKS + GROWN // (128 * MIB)} 1 60; e2e wait-online 60")
    timer.done()
    blocks = virtio_blocks(guest)
    assert len(blocks) == GROWN // (128 * MIB), blocks
    assert all(state == "online" for state, _ in blocks.values()), blocks
    return {name: zone for name, (_, zone) in blocks.items()}


def kernel_alone_grow(boot):
    return kernel_alone(boot, "virtio-mem grow", lambda guest: grow(guest, "kernel alone"), virtio_mem=VIRTIO_MEM)


def zone_counts(zones):
    counts = {}
    for zone in zones.values():
        counts[zone] = counts.get(zone, 0) + 1
    return dict(sorted(counts.items()))


def test_virtio_mem_grow_is_zoned_as_by_the_kernel_and_shrink_is_no_operator_offline(boot):
    by_kernel = kernel_alone_grow(boot)

    guest = boot(virtio_mem=VIRTIO_MEM)
    start_daemon(guest)
    assert "mode=kernel" in mode_line(guest)
    by_daemon = grow(guest, "hotplugd kernel mode")
    FIGURES.append(("virtio-mem 2 GiB zones: kernel alone / hotplugd kernel mode",
                    f"{zone_counts(by_kernel)} / {zone_counts(by_daemon)}"))
    assert by_daemon == by_kernel
    assert_logged_online(guest, sorted(by_daemon), by="kernel")

    # Shrink: the driver takes its memory back itself (offline, then remove, Movable blocks
    # first). That is no operator's offline: nothing to keep offline, nothing to remember.
    movable = sorted(name for name, zone in by_daemon.items() if zone == "Movable")
    timer = Timer("virtio-mem: hotplugd kernel mode: shrink to 0, Movable blocks removed")
    guest.request_virtio_mem(0)
    deadline = time.monotonic() + 120
    while set(movable) & set(virtio_blocks(guest)):
        assert time.monotonic() < deadline, f"Movable blocks not removed: {virtio_blocks(guest)}"
        time.sleep(0.2)
    timer.done()
    left = virtio_blocks(guest)
    # Blocks in a kernel zone can hold unmovable pages: the driver unplugs what it can of them and
    # keeps trying. What is left plugged is within them.
    assert all(zone == "Normal" for _, zone in left.values()), left
    assert guest.virtio_mem_size() <= len(left) * 128 * MIB
    log = guest.daemon_log()
    removals = [line for line in log.splitlines() if "removed" in line]
    for name in movable:
        assert any(re.search(rf"\b{name}\b", line) for line in removals), f"the removal of {name} is not logged:\n{log}"
    assert "taken offline by somebody else" not in log, log
    intent = guest.sh("cat /var/lib/hotplugd/intent 2>/dev/null || true")
    assert not re.search(r"^memory\d+ ", intent, re.M), intent
    assert " error " not in log and "-> failed" not in log, log


def test_virtio_mem_grow_with_hotplugd_onlining(boot):
    """kernel_online = false: hotplugd onlines each block as the driver adds it. The kernel decides
    per virtio-mem device (its own Normal memory lets more of it be Movable), which sysfs does not
    show userspace; hotplugd promises every block online, none failed. The zones of both are
    printed in the run's figures."""
    by_kernel = kernel_alone_grow(boot)

    guest = boot(virtio_mem=VIRTIO_MEM)
    start_daemon(guest, config=userspace())
    assert "mode=userspace" in mode_line(guest)
    by_daemon = grow(guest, "hotplugd userspace mode")
    FIGURES.append(("virtio-mem 2 GiB zones: kernel alone / hotplugd userspace mode",
                    f"{zone_counts(by_kernel)} / {zone_counts(by_daemon)}"))
    differing = {name: (by_kernel.get(name), zone) for name, zone in by_daemon.items() if by_kernel.get(name) != zone}
    print(f"virtio-mem zones, kernel alone: {zone_counts(by_kernel)}; hotplugd userspace: {zone_counts(by_daemon)}; "
          f"blocks that differ (kernel, hotplugd): {differing}")
    assert sorted(by_daemon) == sorted(by_kernel)
    assert_logged_online(guest, sorted(by_daemon), by="hotplugd")
