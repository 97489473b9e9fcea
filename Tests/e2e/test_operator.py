"""Acceptance: the operator's tools on real hot-added hardware."""

import json

from conftest import Timer
from test_hotplug import add_dimms_in_sequence, hot_blocks, start_daemon
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
    assert log.count("offline -> onlining") == 16, "the daemon must not undo an operator's offline"

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
    status = json.loads(guest.sh("hotplugd status --json"))
    assert [c["state"] for c in status["cpus"]] == ["online", "online"]
