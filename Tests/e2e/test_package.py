"""Acceptance: the Debian package (`make deb`) checked by lintian, then installed, upgraded, removed
and purged with apt-get in the systemd guest (Debian bookworm, systemd as PID 1, no network), as
an administrator would.

The guest's disk has hotplugd from `make install` in /usr/local; the test takes that out first, so
that what runs afterwards is the package's.
"""

import json
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import FIGURES, Timer
from test_systemd import journal, onlined, wait_for
from vm import GIB

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEB_DIR = ROOT / ".build" / "deb"
# No network in the guest: whatever apt-get would download, it cannot.
APT = "DEBIAN_FRONTEND=noninteractive apt-get -y"
# What `make install` put in the guest image (and its unit's watchdog drop-in, the suite's own).
MAKE_INSTALLED = [
    "/usr/local/bin/hotplugd", "/usr/local/lib/systemd/system/hotplugd.service",
    "/usr/local/share/man/man8/hotplugd.8", "/usr/local/share/man/man5/hotplugd.toml.5",
    "/usr/local/share/bash-completion/completions/hotplugd", "/usr/local/share/zsh/site-functions/_hotplugd",
    "/usr/local/share/fish/vendor_completions.d/hotplugd.fish", "/etc/hotplugd",
    "/etc/systemd/system/hotplugd.service.d", "/var/lib/hotplugd", "/run/hotplugd",
]
# Anything of hotplugd's on the guest's disk or in /run, by name.
LEFTOVERS = "find / /run -xdev -name '*hotplugd*' -not -path '/var/tmp/debs*' 2>/dev/null"


def control(deb, field):
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def packages():
    """The package as `make deb` builds it, and the same files again with a higher version (dpkg-deb
    rebuilds it; no second compile), for the upgrade."""
    subprocess.run(["make", "--no-print-directory", "deb"], cwd=ROOT, check=True, capture_output=True)
    deb = next(DEB_DIR.glob("hotplugd_*.deb"))
    version = control(deb, "Version")
    assert version == (ROOT / "VERSION").read_text().strip()
    tree = pathlib.Path(tempfile.mkdtemp(prefix="hotplugd-deb-"))
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree / "unpacked")], check=True)
    control_file = tree / "unpacked/DEBIAN/control"
    control_file.write_text(control_file.read_text().replace(f"Version: {version}\n", f"Version: {version}+1\n"))
    upgrade = tree / f"hotplugd_{version}+1_{control(deb, 'Architecture')}.deb"
    # Uncompressed: xz takes most of a minute over the 60 MB binary.
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree / "unpacked"), str(upgrade)],
                   check=True, capture_output=True)
    # The guest reads both from its second disk, a tar archive.
    archive = tree / "debs.tar"
    with tarfile.open(archive, "w") as tar:
        for path in [deb, upgrade]:
            tar.add(path, arcname=path.name)
    yield deb, upgrade, archive
    shutil.rmtree(tree)


def test_lintian_finds_nothing_and_the_binary_is_stripped(packages):
    deb, _, _ = packages
    result = subprocess.run(["lintian", "--fail-on", "error,warning", str(deb)], capture_output=True, text=True)
    # Its tags on standard output; standard error has only its advice not to run as root.
    tags = result.stdout.strip()
    print(f"lintian {deb.name}:\n{tags or '(no tags)'}")
    FIGURES.append((f"lintian {deb.name}", tags.replace("\n", "; ") or "no tags"))
    assert result.returncode == 0, tags + result.stderr
    FIGURES.append((f"{deb.name}: size (bytes)", deb.stat().st_size))
    FIGURES.append((f"{deb.name}: Installed-Size (KiB)", control(deb, "Installed-Size")))

    depends = control(deb, "Depends")
    for library in ["libc6", "libudev1", "libsystemd0", "libstdc++6"]:
        assert library in depends, depends
    with tempfile.TemporaryDirectory() as tree:
        subprocess.run(["dpkg-deb", "-x", str(deb), tree], check=True)
        sections = subprocess.run(["readelf", "-S", "-W", f"{tree}/usr/sbin/hotplugd"], capture_output=True,
                                  text=True, check=True).stdout
        assert ".symtab" not in sections and ".debug_info" not in sections, "the packaged binary is not stripped"
        unit = pathlib.Path(tree, "lib/systemd/system/hotplugd.service").read_text()
        assert "\nExecStart=/usr/sbin/hotplugd run\n" in unit, unit
        version = control(deb, "Version")
        assert subprocess.run([f"{tree}/usr/sbin/hotplugd", "--version"], capture_output=True, text=True,
                              check=True).stdout.strip() == version
        with subprocess.Popen(["gzip", "-dc", f"{tree}/usr/share/man/man8/hotplugd.8.gz"],
                              stdout=subprocess.PIPE, text=True) as man:
            assert f'"hotplugd {version}"' in man.stdout.readline()
    contents = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ["./usr/share/doc/hotplugd/README.md.gz", "./usr/share/doc/hotplugd/changelog.gz",
                 "./usr/share/doc/hotplugd/copyright", "./usr/share/man/man5/hotplugd.toml.5.gz",
                 "./usr/share/bash-completion/completions/hotplugd", "./etc/hotplugd/hotplugd.toml"]:
        assert path in contents, contents
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True,
                               check=True).stdout
    assert conffiles.split() == ["/etc/hotplugd/hotplugd.toml"], conffiles


def test_install_upgrade_remove_and_purge_with_apt(systemd_artifacts, boot, packages):
    deb, upgrade, archive = packages
    initrd, disk = systemd_artifacts
    guest = boot(initrd=initrd, disk=disk, data=archive, append="systemd.show_status=0", start_timeout=300)
    wait_for(guest, "systemctl is-active hotplugd", "active")
    # The package's postinst reloads systemd, which then forgets the removed unit.
    guest.sh("systemctl disable --now hotplugd && rm -rf " + " ".join(MAKE_INSTALLED))
    assert guest.sh(LEFTOVERS, check=False) == ""
    guest.sh("mkdir -p /var/tmp/debs && tar -xf /dev/vdb -C /var/tmp/debs")

    # Installed offline: every dependency is already in the guest's minimal Debian.
    started = time.monotonic()
    output = guest.sh(f"cd /var/tmp/debs && {APT} install ./{deb.name}")
    FIGURES.append(("package: apt-get install in the TCG guest (s)", round(time.monotonic() - started, 1)))
    assert "1 newly installed" in output, output
    wait_for(guest, "systemctl is-active hotplugd", "active")
    assert guest.sh("systemctl is-enabled hotplugd") == "enabled"
    assert guest.sh("systemctl show -p ExecStart --value hotplugd").startswith("{ path=/usr/sbin/hotplugd ;")
    # The package's files, and its own directories (not /usr, /etc and the like, which others share).
    owned = guest.sh("dpkg -L hotplugd | while read -r path; do "
                     "case $path in *hotplugd*) echo $path ;; *) [ -d $path ] || echo $path ;; esac; done").split()
    assert "/usr/sbin/hotplugd" in owned and "/etc/hotplugd" in owned, owned

    timer = Timer("package: a CPU and a 1 GiB DIMM")
    guest.add_cpu(1)
    guest.add_dimm(1 * GIB)
    guest.sh("e2e wait-count 12 2 120; e2e wait-online 120")
    timer.done()
    cpu = onlined(guest, "cpu", 1)
    assert [e["HOTPLUG_DEVICE"] for e in cpu] == ["cpu1"] and cpu[0]["HOTPLUG_ACTION"] == "online", cpu
    # The DIMM's 8 blocks, in one entry or a few (the runs its burst came in).
    dimm = onlined(guest, "memory", 8)
    assert sum(int(e.get("HOTPLUG_COUNT", 1)) for e in dimm) == 8, dimm
    assert {e["HOTPLUG_ZONE"] for e in dimm} == {"Movable"}, dimm

    # What an upgrade must keep: a local edit of the configuration and the operator's intent.
    guest.sh("sed -i 's/^#auto_movable_ratio = 301$/auto_movable_ratio = 250/' /etc/hotplugd/hotplugd.toml")
    edited = guest.sh("cat /etc/hotplugd/hotplugd.toml")
    assert "\nauto_movable_ratio = 250\n" in edited
    guest.sh("hotplugd offline cpu 1")
    intent = guest.sh("cat /var/lib/hotplugd/intent")
    assert "\ncpu1 " in intent, intent
    before = guest.sh("systemctl show -p InvocationID --value hotplugd")

    # No prompt: the guest's commands have no terminal, so a conffile question would fail the upgrade.
    started = time.monotonic()
    output = guest.sh(f"cd /var/tmp/debs && {APT} install ./{upgrade.name}")
    FIGURES.append(("package: apt-get upgrade in the TCG guest (s)", round(time.monotonic() - started, 1)))
    assert "Configuration file" not in output, output
    assert guest.sh("dpkg-query -W -f '${Version}' hotplugd") == control(upgrade, "Version")
    wait_for(guest, "systemctl is-active hotplugd", "active")
    assert guest.sh("systemctl show -p InvocationID --value hotplugd") != before, "the upgrade did not restart it"
    assert guest.sh("cat /etc/hotplugd/hotplugd.toml") == edited
    assert guest.sh("cat /var/lib/hotplugd/intent") == intent
    status = json.loads(guest.sh("hotplugd status --json"))
    assert status["source"] == "daemon", status
    assert guest.sh("cat /sys/devices/system/cpu/cpu1/online") == "0", "the restarted daemon onlined cpu1"

    # Remove stops the service and keeps the configuration and the state; purge takes everything.
    guest.sh(f"{APT} remove hotplugd")
    assert guest.sh("systemctl is-active hotplugd", check=False) == "inactive"
    assert guest.sh("pidof hotplugd", check=False) == ""
    guest.sh("test -f /etc/hotplugd/hotplugd.toml && test -f /var/lib/hotplugd/intent")
    guest.sh(f"{APT} purge hotplugd")
    assert guest.sh("dpkg-query -W hotplugd", check=False).startswith("dpkg-query: no packages found")
    assert guest.sh(" ; ".join(f"test ! -e {path} || echo {path}" for path in owned)) == ""
    assert guest.sh(LEFTOVERS, check=False) == ""
