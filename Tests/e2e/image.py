"""Builds what the test guest boots: Debian's cloud kernel and an initramfs with busybox,
hotplugd (release, Swift runtime linked statically), Debian's udevd, and the guest scripts.

Everything downloaded or built lands in .cache/e2e (git-ignored) and is reused while its
inputs are unchanged.
"""

import gzip
import hashlib
import os
import pathlib
import shutil
import subprocess

from vm import VIRTIO_MEM_MODULES

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "e2e"
GUEST = pathlib.Path(__file__).resolve().parent / "guest"
SYSTEMD_GUEST = pathlib.Path(__file__).resolve().parent / "systemd-guest"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
SWIFT = shutil.which("swift") or "/opt/swift/usr/bin/swift"


def run(*args, **kwargs):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs).stdout


def debian_package(name):
    """Downloads and unpacks a Debian package into the cache; returns the unpacked tree."""
    tree = CACHE / "pkg" / name
    if tree.exists():
        return tree
    download = CACHE / "download"
    download.mkdir(parents=True, exist_ok=True)
    for old in download.glob(f"{name}_*.deb"):
        old.unlink()
    run("apt-get", "download", name, cwd=download)
    deb = next(download.glob(f"{name}_*.deb"))
    staging = tree.parent / (tree.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    run("dpkg-deb", "-x", str(deb), str(staging))
    staging.rename(tree)
    return tree


def kernel():
    """The vmlinuz of the kernel package Debian's linux-image-cloud-amd64 points at."""
    try:
        depends = run("apt-cache", "depends", "linux-image-cloud-amd64")
    except subprocess.CalledProcessError:
        # No package lists yet on a new machine.
        run("apt-get", "update", "-qq")
        depends = run("apt-cache", "depends", "linux-image-cloud-amd64")
    package = next(
        line.split(":", 1)[1].strip()
        for line in depends.splitlines()
        if line.strip().startswith("Depends:") and "linux-image-" in line
    )
    tree = debian_package(package)
    return next((tree / "boot").glob("vmlinuz-*"))


def kernel_module(name):
    """A module (uncompressed .ko) of the kernel package."""
    return next((kernel().parent.parent / "lib/modules").rglob(f"{name}.ko"))


def hotplugd():
    """hotplugd built in release mode with the Swift runtime linked in."""
    run(SWIFT, "build", "-c", "release", "--static-swift-stdlib", "--product", "hotplugd", cwd=ROOT)
    return ROOT / ".build" / "release" / "hotplugd"


def shared_libraries(binary, library_path=None):
    """The shared libraries a binary loads, as ldd resolves them, plus the dynamic loader."""
    env = dict(os.environ)
    if library_path:
        env["LD_LIBRARY_PATH"] = ":".join(str(p) for p in library_path)
    libraries = set()
    for line in run("ldd", str(binary), env=env).splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libraries.add(pathlib.Path(parts[2]))
        elif parts and parts[0].startswith("/"):
            libraries.add(pathlib.Path(parts[0]))
    return libraries


def udevd():
    """Debian's systemd-udevd and udevadm with the private libsystemd-shared of the same version."""
    udev = debian_package("udev")
    shared = debian_package("libsystemd-shared")
    # systemd-udevd is a link to udevadm, which acts as the daemon under that name.
    return udev / "bin/udevadm", [shared / "usr/lib/x86_64-linux-gnu/systemd"]


def initramfs():
    """Builds (or reuses) the initramfs; returns its path."""
    binary = hotplugd()
    udevadm, udev_library_path = udevd()
    busybox = pathlib.Path("/bin/busybox")
    # The virtio-mem driver, loaded by guests that have a virtio-mem device (vm.Guest(virtio_mem=...)).
    modules = [kernel_module(name) for name in VIRTIO_MEM_MODULES]
    digest = digest_of([pathlib.Path(__file__), binary, busybox, udevadm, *modules, *sorted(GUEST.iterdir())])
    image = CACHE / f"initramfs-{digest}.cpio.gz"
    if image.exists():
        return image

    staging = CACHE / "initramfs.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    for directory in ["bin", "sbin", "usr/bin", "usr/sbin", "lib", "lib64", "proc", "sys", "dev", "run", "tmp",
                      "etc/udev/rules.d", "lib/udev/rules.d", "var/log"]:
        (staging / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, staging / "bin/busybox")
    (staging / "bin/sh").symlink_to("busybox")
    shutil.copy2(binary, staging / "usr/bin/hotplugd")
    for name in ["init", "channel"]:
        shutil.copy2(GUEST / name, staging / name)
    shutil.copy2(GUEST / "e2e", staging / "usr/bin/e2e")
    (staging / "lib/modules").mkdir(parents=True, exist_ok=True)
    for module in modules:
        shutil.copy2(module, staging / "lib/modules" / module.name)
    shutil.copy2(udevadm, staging / "usr/bin/udevadm")
    (staging / "usr/sbin/systemd-udevd").symlink_to("/usr/bin/udevadm")
    libraries = shared_libraries(binary) | shared_libraries(udevadm, udev_library_path)
    for library in libraries:
        target = staging / str(library).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library.resolve(), target)
    (staging / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (staging / "etc/group").write_text("root:x:0:\n")

    pack_cpio(staging, image)
    shutil.rmtree(staging)
    for old in CACHE.glob("initramfs-*.cpio.gz"):
        if old != image:
            old.unlink()
    return image


def digest_of(paths):
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def pack_cpio(staging, image):
    cpio = subprocess.run(
        "find . | sort | cpio -o -H newc --quiet", shell=True, cwd=staging, check=True, capture_output=True
    ).stdout
    partial = image.parent / (image.name + ".tmp")
    with gzip.open(partial, "wb", compresslevel=1) as out:
        out.write(cpio)
    partial.rename(image)


def debian_rootfs():
    """A minimal Debian bookworm with systemd and udev, made once by debootstrap."""
    tree = CACHE / "debian-rootfs"
    if (tree / ".complete").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,udev", "bookworm", str(tree),
        DEBIAN_MIRROR)
    (tree / ".complete").touch()
    return tree


def systemd_guest():
    """The systemd guest: (initramfs that mounts the root disk, root disk image). The disk is the
    Debian root file system with hotplugd put in by `make install` and its unit enabled."""
    rootfs = debian_rootfs()
    installed = CACHE / "install"
    shutil.rmtree(installed, ignore_errors=True)
    run("make", "--no-print-directory", "install", f"DESTDIR={installed}", "PREFIX=/usr/local", cwd=ROOT)
    files = sorted(p for p in installed.rglob("*")) + sorted(SYSTEMD_GUEST.iterdir()) + sorted(GUEST.iterdir())
    digest = digest_of([pathlib.Path(__file__), *files])
    disk = CACHE / f"systemd-root-{digest}.ext4"
    initrd = CACHE / f"systemd-initramfs-{digest}.cpio.gz"
    if disk.exists() and initrd.exists():
        return initrd, disk
    for old in [*CACHE.glob("systemd-root-*.ext4"), *CACHE.glob("systemd-initramfs-*.cpio.gz")]:
        old.unlink()

    staging = CACHE / "systemd-root.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    run("cp", "-a", str(rootfs), str(staging))
    (staging / ".complete").unlink()
    run("cp", "-a", f"{installed}/.", str(staging))
    shutil.copy2(GUEST / "channel", staging / "usr/local/sbin/e2e-channel")
    shutil.copy2(GUEST / "e2e", staging / "usr/local/bin/e2e")
    units = staging / "etc/systemd/system"
    shutil.copy2(SYSTEMD_GUEST / "e2e-channel.service", units / "e2e-channel.service")
    (units / "multi-user.target.wants").mkdir(exist_ok=True)
    (units / "multi-user.target.wants/e2e-channel.service").symlink_to("/etc/systemd/system/e2e-channel.service")
    # What `systemctl enable hotplugd` does.
    (units / "sysinit.target.wants").mkdir(exist_ok=True)
    (units / "sysinit.target.wants/hotplugd.service").symlink_to("/usr/local/lib/systemd/system/hotplugd.service")
    (units / "hotplugd.service.d").mkdir(exist_ok=True)
    shutil.copy2(SYSTEMD_GUEST / "watchdog.conf", units / "hotplugd.service.d/watchdog.conf")
    (staging / "etc/hostname").write_text("guest\n")
    partial = disk.parent / (disk.name + ".tmp")
    run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(staging), str(partial), "1536M")
    partial.rename(disk)
    shutil.rmtree(staging)

    boot = CACHE / "systemd-initramfs.tmp"
    shutil.rmtree(boot, ignore_errors=True)
    for directory in ["bin", "proc", "sys", "dev", "lib/modules", "newroot"]:
        (boot / directory).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", boot / "bin/busybox")
    (boot / "bin/sh").symlink_to("busybox")
    shutil.copy2(SYSTEMD_GUEST / "init", boot / "init")
    for module in ["virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
                   "virtio_blk"]:
        shutil.copy2(kernel_module(module), boot / f"lib/modules/{module}.ko")
    pack_cpio(boot, initrd)
    shutil.rmtree(boot)
    return initrd, disk


if __name__ == "__main__":
    print(kernel())
    print(initramfs())
    print(*systemd_guest())
