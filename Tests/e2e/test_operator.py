"""Acceptance: the operator's tools on real hot-added hardware."""

import json
import re
import time

from conftest import Timer
from test_hotplug import add_dimms_in_sequence, hot_blocks, start_daemon, stop_daemon, userspace
from vm import GIB


def test_offline_a_dimm_with_hotplugd_then_remove_it(boot):
    guest = boot(smp="1,maxcpus=4")
    start_daemon(guest)
    add_dimms_in_sequence(guest, "operator: add", sizes=[1 * GIB, 1 * GIB])
    blocks = [name for name, (_, _, dimm) in hot_blocks(guest) if dimm == "PNP0C80:00"]
    assert len(blocks) == 8

    # Refused up front, nothing written: cpu0 has no online file; the second DIMM is in Normal.
    refused = guest.sh("hotplugd offline cpu 0; echo status=$?")
    assert "cpu0: has no online attribute" in refused and "status=1" in refused, refused
    refused = guest.sh("hotplugd offline memory --dimm PNP0C80:01; echo status=$?")
    assert "in zone Normal" in refused and "status=1" in refused, refused

    timer = Timer("operator: hotplugd offline memory --dimm (1 GiB)")
    output = guest.sh("hotplugd offline memory --dimm PNP0C80:00")
    timer.done()
    assert output.splitlines() == [f"{name}: offline" for name in reversed(blocks)], output
    assert all(state == "offline" for name, (state, _, _) in hot_blocks(guest) if name in blocks)
    log = guest.daemon_log()
    for name in blocks:
        assert f"{name} online -> offline" in log
    # 16 blocks onlined once each (by the kernel in kernel mode, by hotplugd otherwise), and no more.
    onlines = re.findall(r"memory\d+ (?:onlining|offline) -> online\b", log)
    assert len(onlines) == 16, "the daemon must not undo an operator's offline:\n" + log

    guest.del_dimm("dimm1")
    guest.sh("e2e wait-count 12 1 120")
    assert not any(dimm == "PNP0C80:00" for _, (_, _, dimm) in hot_blocks(guest))
    assert "offline -> removed" in guest.daemon_log()

    # A CPU round trip.
    guest.add_cpu(1)
    guest.sh("e2e wait-count 12 2 120; e2e wait-online 120")
    assert guest.sh("hotplugd offline cpu 1") == "cpu1: offline"
    assert guest.sh("cat /sys/devices/system/cpu/cpu1/online") == "0"
    assert guest.sh("hotplugd online cpu 1") == "cpu1: online"
    # status asks the daemon, which may still be reading the uevents of the two writes.
    for _ in range(50):
        status = json.loads(guest.sh("hotplugd status --json"))
        if [c["state"] for c in status["cpus"]] == ["online", "online"]:
            break
        time.sleep(0.1)
    assert [c["state"] for c in status["cpus"]] == ["online", "online"], status["cpus"]


def test_an_admin_offline_survives_a_daemon_restart(boot):
    guest = boot(smp="1,maxcpus=4")
    start_daemon(guest)
    guest.add_cpu(1)
    guest.sh("e2e wait-count 4 2 120; e2e wait-online 120")
    add_dimms_in_sequence(guest, "intent: add", sizes=[1 * GIB])
    last_block = hot_blocks(guest)[-1][0]

    # Taken offline behind the daemon's back: remembered, on disk, and shown by status.
    guest.sh(f"echo 0 > /sys/devices/system/cpu/cpu1/online; echo offline > /sys/devices/system/memory/{last_block}/state")
    guest.sh("e2e wait-log 'device=cpu1 intent=observed' 10")
    guest.sh(f"e2e wait-log 'device={last_block} intent=observed' 10")
    intent = guest.sh("cat /var/lib/hotplugd/intent")
    assert "\ncpu1 observed " in intent and f"\n{last_block} observed " in intent, intent
    status = json.loads(guest.sh("hotplugd status --json"))
    cpu1 = next(c for c in status["cpus"] if c["device"] == "cpu1")
    assert cpu1["intent"]["origin"] == "observed", cpu1
    assert cpu1["policy"].startswith("leave offline: taken offline by somebody else at "), cpu1

    # A restart scans, and coldplug would online both; the intent keeps them offline.
    stop_daemon(guest)
    start_daemon(guest)
    assert guest.sh("cat /sys/devices/system/cpu/cpu1/online") == "0"
    assert guest.sh(f"cat /sys/devices/system/memory/{last_block}/state") == "offline"
    assert " onlining -> " not in guest.daemon_log()

    # Onlined by the admin: the intent is gone, and a later hot-add is the daemon's again.
    guest.sh("echo 1 > /sys/devices/system/cpu/cpu1/online")
    guest.sh("e2e wait-log 'device=cpu1 reason=online event.*operator intent dropped' 10")
    assert "cpu1" not in guest.sh("cat /var/lib/hotplugd/intent")
    guest.add_cpu(2)
    guest.sh("e2e wait-count 12 3 120")
    guest.sh("e2e wait-log 'cpu2 onlining -> online' 60")


HOOK = """#!/bin/sh
echo "hook saw $HOTPLUG_ACTION $HOTPLUG_DEVICES"
echo "$HOTPLUG_ACTION $HOTPLUG_KIND $HOTPLUG_COUNT $HOTPLUG_DEVICES|$HOTPLUG_ZONES|$HOTPLUG_NODES" >> /run/hook-runs
"""


HOOK_CONFIG = '[metrics]\ntextfile = "/run/hotplugd.prom"\n[[hook]]\ncommand = ["/etc/hotplugd/hook"]\non = ["{}"]'


def test_a_hook_sees_hot_added_devices_and_metrics_count_them(boot):
    guest = boot(smp="1,maxcpus=4")
    guest.sh(f"cat > /etc/hotplugd/hook <<'EOF'\n{HOOK}EOF\nchmod 755 /etc/hotplugd/hook")
    # The metrics count hotplugd's own onlining (kernel_online = false).
    start_daemon(guest, config=userspace(HOOK_CONFIG.format("online")))
    guest.add_cpu(1)
    guest.sh("e2e wait-count 4 2 120; e2e wait-online 120")
    guest.sh("e2e wait-log 'hook ran' 30")
    add_dimms_in_sequence(guest, "hook: add", sizes=[1 * GIB])
    guest.sh("until [ $(wc -l < /run/hook-runs) -ge 2 ]; do sleep 0.05; done")

    runs = guest.sh("cat /run/hook-runs").splitlines()
    blocks = " ".join(name for name, _ in hot_blocks(guest))
    assert runs == ["online cpu 1 cpu1||0", f"online memory 8 {blocks}|Movable|0"], runs
    log = guest.daemon_log()
    assert "hook=hook line=hook saw online cpu1" in log, log

    metrics = guest.sh("sleep 1.2; cat /run/hotplugd.prom")
    for line in ['hotplugd_online_operations_total{kind="cpu",result="succeeded"} 1',
                 'hotplugd_online_operations_total{kind="memory",result="succeeded"} 8',
                 'hotplugd_time_to_online_seconds_count{kind="memory"} 8',
                 'hotplugd_memory_blocks_online{zone="Movable",node="0"} 8.0',
                 'hotplugd_hook_runs_total{hook="hook",result="succeeded"} 2']:
        assert line in metrics.splitlines(), f"{line} not in\n{metrics}"

    # A reload puts the new hooks in force at once: the same hook, now on add instead of online.
    guest.sh(f"cat > /etc/hotplugd/hotplugd.toml <<'EOF'\n{userspace(HOOK_CONFIG.format('add'))}\nEOF")
    guest.sh("e2e signal HUP; e2e wait-log 'configuration reloaded' 10")
    guest.add_cpu(2)
    guest.sh("e2e wait-count 12 3 120; e2e wait-online 120")
    guest.sh("e2e wait-log-count 'hook ran' 3 30")
    runs = guest.sh("cat /run/hook-runs").splitlines()
    assert len(runs) == 3 and runs[2].startswith("add cpu 1 cpu2|"), runs
