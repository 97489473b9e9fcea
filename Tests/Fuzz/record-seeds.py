"""Records the uevent fuzzer's seed corpus from this machine's kernel (run as root).

Writes an action into a few CPUs' and memory blocks' `uevent` files (the kernel broadcasts the
event and changes nothing, as `udevadm trigger` does), keeps each datagram exactly as the kernel
sent it, and the same properties framed as udevd re-broadcasts them (libudev's header).

    python3 Tests/Fuzz/record-seeds.py [Tests/Fuzz/corpus/uevent]
"""

import hashlib
import pathlib
import socket
import struct
import sys

NETLINK_KOBJECT_UEVENT = 15
ACTIONS = ["add", "remove", "change", "online", "offline"]


def murmur2(data):
    """MurmurHash2, seed 0: the subsystem hash in libudev's header."""
    m, h, i = 0x5BD1E995, len(data), 0
    while len(data) - i >= 4:
        k = struct.unpack_from("<I", data, i)[0] * m & 0xFFFFFFFF
        k = (k ^ k >> 24) * m & 0xFFFFFFFF
        h = (h * m & 0xFFFFFFFF) ^ k
        i += 4
    rest = len(data) - i
    if rest >= 3:
        h ^= data[i + 2] << 16
    if rest >= 2:
        h ^= data[i + 1] << 8
    if rest >= 1:
        h = (h ^ data[i]) * m & 0xFFFFFFFF
    h = (h ^ h >> 13) * m & 0xFFFFFFFF
    return h ^ h >> 15


def udev_framed(kernel_datagram):
    """The kernel datagram's properties behind libudev's monitor_netlink_header."""
    properties = kernel_datagram[kernel_datagram.index(b"\0") + 1:]
    subsystem = next(p[10:] for p in properties.split(b"\0") if p.startswith(b"SUBSYSTEM="))
    header = b"libudev\0" + struct.pack(">I", 0xFEEDCAFE) + struct.pack("<III", 40, 40, len(properties))
    return header + struct.pack(">IIII", murmur2(subsystem), 0, 0, 0) + properties


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "corpus" / "uevent")
    out.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
    listener.bind((0, 1))
    listener.settimeout(2)
    devices = sorted(pathlib.Path("/sys/devices/system/cpu").glob("cpu[0-9]*"))[:2]
    devices += sorted(pathlib.Path("/sys/devices/system/memory").glob("memory[0-9]*"))[:2]
    for device in devices:
        for action in ACTIONS:
            (device / "uevent").write_text(action)
            while True:
                datagram = listener.recv(8192)
                if datagram.split(b"\0", 1)[0] == f"{action}@/{device.relative_to('/sys').as_posix()}".encode():
                    break  # else somebody else's event: skipped
            for seed in (datagram, udev_framed(datagram)):
                (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{len(list(out.iterdir()))} seeds in {out}")


if __name__ == "__main__":
    main()
