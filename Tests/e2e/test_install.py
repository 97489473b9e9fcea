"""`make install` and `make uninstall` into a staging directory (DESTDIR)."""

import pathlib
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]

INSTALLED = [
    "usr/bin/hotplugd",
    "usr/lib/systemd/system/hotplugd.service",
    "usr/share/man/man8/hotplugd.8",
    "usr/share/man/man5/hotplugd.toml.5",
    "usr/share/bash-completion/completions/hotplugd",
    "usr/share/zsh/site-functions/_hotplugd",
    "usr/share/fish/vendor_completions.d/hotplugd.fish",
]


def make(*args):
    subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, check=True, capture_output=True)


def test_install_keeps_an_existing_configuration_and_uninstall_removes_the_rest():
    with tempfile.TemporaryDirectory() as destdir:
        dest = pathlib.Path(destdir)
        make("install", f"DESTDIR={dest}", "PREFIX=/usr")
        for path in INSTALLED:
            assert (dest / path).is_file(), path
        unit = (dest / "usr/lib/systemd/system/hotplugd.service").read_text()
        assert "ExecStart=/usr/bin/hotplugd run" in unit
        config = dest / "etc/hotplugd/hotplugd.toml"
        assert config.read_text() == (ROOT / "config/hotplugd.toml").read_text()
        assert "-F _hotplugd hotplugd" in (dest / "usr/share/bash-completion/completions/hotplugd").read_text()
        # Stripped: no symbol table (readelf comes with binutils, which the Swift toolchain links with).
        binary = dest / "usr/bin/hotplugd"
        sections = subprocess.run(["readelf", "-S", "-W", str(binary)], capture_output=True, text=True, check=True)
        assert ".symtab" not in sections.stdout, "the installed binary is not stripped"
        # Linked by lld, which does not repeat glibc's link-time warning about mktemp (in
        # Foundation, never called) as GNU ld did on every release build.
        comment = subprocess.run(["readelf", "-p", ".comment", str(binary)], capture_output=True, text=True,
                                 check=True)
        assert "Linker: LLD" in comment.stdout, comment.stdout
        assert subprocess.run([str(binary), "--version"], capture_output=True, check=False).returncode == 0

        config.write_text('[memory]\nonline_type = "online_movable"\n')
        make("install", f"DESTDIR={dest}", "PREFIX=/usr")
        assert config.read_text() == '[memory]\nonline_type = "online_movable"\n', "install overwrote the configuration"

        make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
        for path in INSTALLED:
            assert not (dest / path).exists(), path
        assert config.exists(), "uninstall removed the administrator's configuration"
