"""Acceptance: hotplugd as a systemd service, in a guest whose PID 1 is Debian's systemd and whose
root file system is Debian bookworm with hotplugd put in by `make install` and its unit enabled.
"""

import json
import re
import time

import pytest

from conftest import FIGURES, Timer
from vm import GIB

ONLINE_ID = "5c0a1f8e2b7d4c19a3e6f0d2b8c47e51"
RELOAD_FAILED_ID = "4b7e2c9a1d6f4a38b5c3e0f7a9d21c85"
UNIT = "/usr/local/lib/systemd/system/hotplugd.service"


def wait_for(guest, command, expected, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        output = guest.sh(command, check=False).strip()
        if output == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} gave {output!r}, not {expected!r}\n{guest.diagnostics()}")
        time.sleep(0.5)


def journal(guest, *matches):
    lines = guest.sh(f"journalctl -u hotplugd -o json --no-pager {' '.join(matches)}", check=False)
    return [json.loads(line) for line in lines.splitlines() if line.startswith("{")]


def onlined(guest, kind, count, timeout=30):
    """The journal's entries that say devices of `kind` (cpu, memory) came online, once they name
    `count` devices. Alike memory blocks of one burst are one entry (HOTPLUG_DEVICES,
    HOTPLUG_COUNT), written when the burst has ended, which can be after they are online."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in journal(guest, "HOTPLUG_TO=online")
                   if e.get("HOTPLUG_DEVICE", e.get("HOTPLUG_DEVICES", "")).startswith(kind)]
        if sum(int(e.get("HOTPLUG_COUNT", 1)) for e in entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.5)


@pytest.fixture
def service(systemd_artifacts, boot):
    initrd, disk = systemd_artifacts
    guest = boot(initrd=initrd, disk=disk, append="systemd.show_status=0", start_timeout=300)
    wait_for(guest, "systemctl is-active hotplugd", "active")
    return guest


def test_unit_verifies_and_is_hardened(service):
    service.sh(f"systemd-analyze verify --man=no {UNIT}")
    report = service.sh("systemd-analyze security --no-pager hotplugd.service")
    exposure = float(re.search(r"Overall exposure level for hotplugd.service: ([0-9.]+)", report).group(1))
    FIGURES.append(("systemd-analyze security: overall exposure", exposure))
    assert exposure <= 2.0, report
    # Hardened, and still able to write the online attributes: ProtectKernelTunables makes /sys
    # read-only, ReadWritePaths opens the two directories again.
    assert "ProtectKernelTunables=yes" in service.sh(f"cat {UNIT}")
    # The sandbox leaves it what it needs to lock its memory, and the OOM killer passes it by.
    pid = service.sh("systemctl show -p MainPID --value hotplugd")
    status = service.sh(f"cat /proc/{pid}/status")
    assert int(re.search(r"VmLck:\s+(\d+) kB", status).group(1)) > 0, status
    assert service.sh(f"cat /proc/{pid}/oom_score_adj") == "-900"
    assert "cannot lock" not in service.sh("journalctl -u hotplugd --no-pager")

    # The sandbox lets it set the kernel's memory onlining:
    # the kernel onlines new memory with hotplugd's policy, and a stop puts the settings back.
    mode = [e for e in journal(service) if e.get("HOTPLUG_KIND") == "memory-onlining"]
    assert mode and mode[0].get("HOTPLUG_MODE") == "kernel", mode
    assert service.sh("cat /sys/devices/system/memory/auto_online_blocks") == "online"
    assert service.sh("cat /sys/module/memory_hotplug/parameters/online_policy") == "auto-movable"
    assert "auto_online_blocks offline" in service.sh("cat /run/hotplugd/kernel-online")
    # In the daemon's mount namespace: its three parameters writable; adding memory by address and
    # page poisoning read-only where this kernel has them (Debian's cloud kernel has neither).
    mounts = service.sh(f"cat /proc/{pid}/mountinfo")

    def options(path):
        line = next((line for line in mounts.splitlines() if line.split()[4] == path), None)
        assert line, f"{path} is not a mount of its own in the sandbox:\n{mounts}"
        return line.split()[5].split(",")

    for name in ["online_policy", "auto_movable_ratio", "auto_movable_numa_aware"]:
        assert "rw" in options(f"/sys/module/memory_hotplug/parameters/{name}")
    for name in ["probe", "soft_offline_page", "hard_offline_page"]:
        path = f"/sys/devices/system/memory/{name}"
        if service.sh(f"test -e {path} && echo yes || echo no") == "yes":
            assert "ro" in options(path)
    service.sh("systemctl stop hotplugd")
    assert service.sh("cat /sys/devices/system/memory/auto_online_blocks") == "offline"
    assert service.sh("cat /sys/module/memory_hotplug/parameters/online_policy") == "contig-zones"
    assert service.sh("test -e /run/hotplugd/kernel-online && echo left || echo gone") == "gone"


def test_service_onlines_logs_to_the_journal_reloads_and_survives_its_watchdog(service):
    status = service.sh("systemctl show -p StatusText --value hotplugd")
    assert status.startswith("cpu: 1 online; memory: 4 online"), status

    timer = Timer("systemd service: a CPU and a 1 GiB DIMM")
    service.add_cpu(1)
    service.add_dimm(1 * GIB)
    service.sh("e2e wait-count 12 2 120; e2e wait-online 120")
    timer.done()

    entries = journal(service, "HOTPLUG_DEVICE=cpu1")
    online = [e for e in entries if e.get("HOTPLUG_TO") == "online"]
    assert online, entries
    assert online[0]["HOTPLUG_FROM"] == "onlining"
    assert online[0]["HOTPLUG_ACTION"] == "online"
    assert online[0]["MESSAGE_ID"] == ONLINE_ID
    assert online[0]["PRIORITY"] == "6"
    assert online[0]["MESSAGE"] == "cpu1 onlining -> online"
    # The DIMM is one entry at info (the unit's level), or a few if its burst came in parts; its
    # blocks' own are at debug, not journaled.
    dimm = onlined(service, "memory", 8)
    assert sum(int(e.get("HOTPLUG_COUNT", 1)) for e in dimm) == 8, dimm
    assert all(e.get("HOTPLUG_DEVICES", "").startswith("memory3") for e in dimm), dimm
    assert {(e["HOTPLUG_ZONE"], e["HOTPLUG_NODE"], e["MESSAGE_ID"]) for e in dimm} == {("Movable", "0", ONLINE_ID)}, dimm
    assert len(dimm) < 8, "the blocks are said together, not one by one"

    # A good configuration is taken on reload...
    service.sh("printf '[memory]\\nonline_type = \"online_kernel\"\\n' > /etc/hotplugd/hotplugd.toml")
    service.sh("systemctl reload hotplugd")
    assert any(e["MESSAGE"] == "configuration reloaded" for e in journal(service))
    # ...a broken one is refused, and the one in force stays.
    service.sh("printf '[memory]\\nonline_type = \"sideways\"\\n' > /etc/hotplugd/hotplugd.toml")
    service.sh("systemctl reload hotplugd")
    failed = journal(service, f"MESSAGE_ID={RELOAD_FAILED_ID}")
    assert failed and "memory.online_type" in failed[0]["HOTPLUG_ERROR"], failed
    wait_for(service, "systemctl is-active hotplugd", "active")
    service.add_dimm(1 * GIB)
    service.sh("e2e wait-count 20 2 120; e2e wait-online 120")
    zones = [line.split()[2] for line in service.sh("e2e devices").splitlines()
             if line.startswith("memory") and line.split()[3] == "PNP0C80:01"]
    assert zones and set(zones) == {"Normal"}, zones

    # A stuck loop misses its watchdog pings: systemd kills and restarts the daemon (with a valid
    # configuration on disk again: with a broken one it would refuse to start, EX_CONFIG).
    service.sh("rm /etc/hotplugd/hotplugd.toml")
    pid = service.sh("systemctl show -p MainPID --value hotplugd")
    service.sh(f"kill -STOP {pid}")
    deadline = time.monotonic() + 60
    while service.sh("systemctl show -p NRestarts --value hotplugd") == "0":
        assert time.monotonic() < deadline, service.sh("systemctl status hotplugd --no-pager", check=False)
        time.sleep(0.5)
    wait_for(service, "systemctl is-active hotplugd", "active")
    assert service.sh("systemctl show -p MainPID --value hotplugd") != pid
    assert "Watchdog timeout" in service.sh("journalctl -u hotplugd --no-pager", check=False)


def test_conflicting_udev_rule_is_named_with_its_fix(service):
    service.sh("echo 'SUBSYSTEM==\"memory\", ACTION==\"add\", TEST==\"state\", ATTR{state}==\"offline\", "
               "ATTR{state}=\"online\"' > /etc/udev/rules.d/40-vm-hotadd.rules")
    service.sh("systemctl restart hotplugd")
    wait_for(service, "systemctl is-active hotplugd", "active")
    warnings = [e for e in journal(service) if "udev rule" in e["MESSAGE"]]
    assert warnings, journal(service)
    assert warnings[-1]["HOTPLUG_RULE"] == "/etc/udev/rules.d/40-vm-hotadd.rules"
    assert warnings[-1]["HOTPLUG_FIX"] == "mask it: ln -s /dev/null /etc/udev/rules.d/40-vm-hotadd.rules"


def test_broken_configuration_at_start_is_not_restarted_in_a_loop(service):
    service.sh("printf '[cpu]\\ninclude = \"0-x\"\\n' > /etc/hotplugd/hotplugd.toml")
    service.sh("systemctl restart hotplugd", check=False)
    wait_for(service, "systemctl is-active hotplugd", "failed")
    assert service.sh("systemctl show -p ExecMainStatus --value hotplugd") == "78"
    restarts = service.sh("systemctl show -p NRestarts --value hotplugd")
    time.sleep(3)
    assert service.sh("systemctl show -p NRestarts --value hotplugd") == restarts
    log = service.sh("journalctl -u hotplugd --no-pager", check=False)
    assert '/etc/hotplugd/hotplugd.toml:2: cpu.include: "0-x" in CPU list' in log, log


HOOK_ID = "83c7698c440246dead7c02ad295d3dcf"
HOOK = """#!/bin/sh
echo "$HOTPLUG_ACTION $HOTPLUG_KIND $HOTPLUG_COUNT $HOTPLUG_DEVICES" >> /run/hotplugd/hook-runs
{ grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status; echo "oom_score_adj $(cat /proc/self/oom_score_adj)"; } \\
    > /run/hotplugd/hook-powers
"""


def test_hooks_metrics_and_intent_under_the_hardened_unit(service):
    # Hooks run inside the unit's sandbox: they write where the daemon may (here its RuntimeDirectory).
    service.sh(f"cat > /usr/local/sbin/hotplug-hook <<'EOF'\n{HOOK}EOF\nchmod 755 /usr/local/sbin/hotplug-hook")
    service.sh("mkdir -p /var/lib/prometheus/node-exporter")
    service.sh("printf '[metrics]\\ntextfile = \"/var/lib/prometheus/node-exporter/hotplugd.prom\"\\n"
               "[[hook]]\\ncommand = [\"/usr/local/sbin/hotplug-hook\"]\\n' > /etc/hotplugd/hotplugd.toml")
    service.sh("systemctl restart hotplugd")
    wait_for(service, "systemctl is-active hotplugd", "active")

    service.add_cpu(1)
    service.sh("e2e wait-count 4 2 120; e2e wait-online 120")
    wait_for(service, "cat /run/hotplugd/hook-runs", "online cpu 1 cpu1")
    ran = journal(service, f"MESSAGE_ID={HOOK_ID}")
    assert ran and ran[-1]["HOTPLUG_RESULT"] == "succeeded" and ran[-1]["HOTPLUG_HOOK"] == "hotplug-hook", ran
    # Without the daemon's powers: no capabilities, the default OOM score (the daemon has -900).
    powers = service.sh("cat /run/hotplugd/hook-powers").splitlines()
    assert powers == ["CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapAmb:\t0000000000000000",
                      "oom_score_adj 0"], powers
    daemon = service.sh("grep -E '^Cap(Eff|Amb)' /proc/$(systemctl show -p MainPID --value hotplugd)/status")
    assert "CapEff:\t0000000000005000" in daemon, daemon

    prom = "/var/lib/prometheus/node-exporter/hotplugd.prom"
    wait_for(service, f"grep -c 'hotplugd_hook_runs_total{{hook=\"hotplug-hook\",result=\"succeeded\"}} 1' {prom}", "1")
    metrics = service.sh(f"cat {prom}")
    assert 'hotplugd_online_operations_total{kind="cpu",result="succeeded"} 1' in metrics, metrics
    # Readable by node_exporter's user despite the unit's UMask=0077.
    assert service.sh(f"stat -c %a {prom}") == "644"
    # A textfile directory of node_exporter's own account is not writable by root without
    # CAP_DAC_OVERRIDE; the file written in hotplugd's runtime directory and linked from there is.
    service.sh("chown -R nobody /var/lib/prometheus/node-exporter; rm -f /var/lib/prometheus/node-exporter/*")
    service.sh("systemctl restart hotplugd")  # [metrics] takes effect at a start.
    wait_for(service, "journalctl -u hotplugd -o json --no-pager | grep 'cannot write the metrics file' "
                      "| grep -q -i 'permission denied' && echo said", "said")
    service.sh("sed -i 's|^textfile = .*|textfile = \"/run/hotplugd/hotplugd.prom\"|' /etc/hotplugd/hotplugd.toml; "
               f"ln -s /run/hotplugd/hotplugd.prom {prom}; systemctl restart hotplugd")
    wait_for(service, f"grep -c '^hotplugd_block_size_bytes ' {prom}", "1")

    # An administrator's offline is kept in the StateDirectory and survives a restart of the service.
    service.sh("echo 0 > /sys/devices/system/cpu/cpu1/online")
    wait_for(service, "grep -c '^cpu1 observed ' /var/lib/hotplugd/intent", "1")
    service.sh("systemctl restart hotplugd")
    wait_for(service, "systemctl is-active hotplugd", "active")
    assert service.sh("cat /sys/devices/system/cpu/cpu1/online") == "0"
    status = json.loads(service.sh("hotplugd status --json"))
    assert next(c for c in status["cpus"] if c["device"] == "cpu1")["intent"]["origin"] == "observed"
