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

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "e2e"
GUEST = pathlib.Path(__file__).resolve().parent / "guest"
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
    inputs = [pathlib.Path(__file__), binary, busybox, udevadm, *sorted(GUEST.iterdir())]
    digest = hashlib.sha256()
    for path in inputs:
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    image = CACHE / f"initramfs-{digest.hexdigest()[:16]}.cpio.gz"
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
    shutil.copy2(udevadm, staging / "usr/bin/udevadm")
    (staging / "usr/sbin/systemd-udevd").symlink_to("/usr/bin/udevadm")
    libraries = shared_libraries(binary) | shared_libraries(udevadm, udev_library_path)
    for library in libraries:
        target = staging / str(library).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library.resolve(), target)
    (staging / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (staging / "etc/group").write_text("root:x:0:\n")

    cpio = subprocess.run(
        "find . | sort | cpio -o -H newc --quiet", shell=True, cwd=staging, check=True, capture_output=True
    ).stdout
    partial = image.parent / (image.name + ".tmp")
    with gzip.open(partial, "wb", compresslevel=1) as out:
        out.write(cpio)
    partial.rename(image)
    shutil.rmtree(staging)
    for old in CACHE.glob("initramfs-*.cpio.gz"):
        if old != image:
            old.unlink()
    return image


if __name__ == "__main__":
    print(kernel())
    print(initramfs())
