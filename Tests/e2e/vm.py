"""A QEMU guest (TCG, no KVM) driven as a hypervisor drives one: QMP for hot-add and removal,
and a command channel on the guest's second serial port for reading sysfs and the daemon's log.
"""

import base64
import json
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
MIB = 1 << 20
GIB = 1 << 30
# The virtio-mem driver and what it needs, in load order (the initramfs has them in /lib/modules).
VIRTIO_MEM_MODULES = ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
                      "virtio_mem"]
VIRTIO_MEM = "vm0"


class GuestError(Exception):
    pass


class Guest:
    def __init__(self, kernel, initrd, append="", smp="1,maxcpus=4", memory="512M,slots=8,maxmem=32G",
                 cpu="qemu64,+rdrand", disk=None, accel="tcg", numa=None, virtio_mem=None, data=None):
        """numa: the boot memory of each NUMA node in MiB (their sum must be the -m size), e.g.
        [256, 256]; all CPUs are on node 0. virtio_mem: (node, bytes) adds a virtio-mem-pci device
        (id vm0) of that size with nothing plugged (requested-size 0), and loads its driver.
        data: a file (a tar archive, say) the guest reads as its second disk, /dev/vdb, read-only."""
        self.kernel = kernel
        self.initrd = initrd
        self.append = append
        self.smp = smp
        self.memory = memory
        self.cpu = cpu
        self.disk = disk
        self.accel = accel
        self.numa = numa
        self.virtio_mem = virtio_mem
        self.data = data
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="hotplugd-e2e-"))
        self.console = self.workdir / "console.log"
        self.process = None
        self.qmp_file = None
        self.channel_file = None
        self.dimms = 0

    # Life cycle

    def start(self, timeout=120):
        qmp_path = self.workdir / "qmp.sock"
        channel_path = self.workdir / "channel.sock"
        args = [
            QEMU, "-accel", self.accel, "-machine", "q35", "-cpu", self.cpu, "-smp", self.smp, "-m", self.memory,
            "-kernel", str(self.kernel), "-initrd", str(self.initrd),
            "-append", f"console=ttyS0 panic=-1 quiet loglevel=4 {self.append}".strip(),
            "-display", "none", "-no-reboot", "-nodefaults",
            "-serial", f"file:{self.console}",
            "-chardev", f"socket,id=channel,path={channel_path},server=on,wait=off",
            "-serial", "chardev:channel",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
        ]
        for node, mib in enumerate(self.numa or []):
            args += ["-object", f"memory-backend-ram,id=ram{node},size={mib}M",
                     "-numa", f"node,nodeid={node},memdev=ram{node}" + (f",cpus=0-{self._maxcpus() - 1}" if node == 0 else "")]
        if self.virtio_mem:
            node, size = self.virtio_mem
            args += ["-object", f"memory-backend-ram,id=mem-{VIRTIO_MEM},size={size}",
                     "-device", f"virtio-mem-pci,id={VIRTIO_MEM},memdev=mem-{VIRTIO_MEM},node={node},requested-size=0"]
        if self.disk:
            # snapshot=on: the guest's writes go to a temporary overlay, the image stays as built.
            args += ["-drive", f"file={self.disk},format=raw,if=virtio,snapshot=on"]
        if self.data:
            args += ["-drive", f"file={self.data},format=raw,if=virtio,readonly=on"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        qmp_socket = self._connect(qmp_path)
        qmp_socket.settimeout(120)
        self.qmp_file = qmp_socket.makefile("rw")
        greeting = json.loads(self.qmp_file.readline())
        assert "QMP" in greeting
        self.qmp("qmp_capabilities")
        self.channel_socket = self._connect(channel_path)
        self.channel_file = self.channel_socket.makefile("rw", newline="\n")
        # Every read on the channel is bounded: a guest that stops answering fails the test
        # instead of hanging the run.
        self.channel_socket.settimeout(timeout)
        try:
            line = ""
            while "__READY__" not in line:
                if self.process.poll() is not None:
                    raise GuestError("QEMU exited")
                line = self.channel_file.readline()
        except (OSError, GuestError) as error:
            raise GuestError(f"guest did not come up: {error}\n{self.diagnostics()}") from None
        if self.virtio_mem:
            self.sh("; ".join(f"insmod /lib/modules/{module}.ko" for module in VIRTIO_MEM_MODULES))
        return self

    def _maxcpus(self):
        fields = dict(part.split("=", 1) for part in self.smp.split(",") if "=" in part)
        return int(fields.get("maxcpus", self.smp.split(",")[0]))

    def stop(self):
        if self.process and self.process.poll() is None:
            try:
                self.qmp("quit")
            except Exception:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _connect(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX)
                sock.connect(str(path))
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline or self.process.poll() is not None:
                    out = self.process.stdout.read().decode() if self.process.poll() is not None else ""
                    raise GuestError(f"cannot reach {path}: {out}")
                time.sleep(0.05)

    # QMP

    def qmp(self, command, **arguments):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.qmp_file.write(json.dumps(message) + "\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "event" in reply:
                continue
            if "error" in reply:
                raise GuestError(f"QMP {command} {arguments}: {reply['error']}")
            return reply.get("return")

    def add_cpu(self, core, thread=0, socket_id=0):
        self.qmp("device_add", driver="qemu64-x86_64-cpu", id=f"cpu-{socket_id}-{core}-{thread}",
                 **{"socket-id": socket_id, "core-id": core, "thread-id": thread})

    def add_dimm(self, size, name=None, reserve=True, node=None):
        """Hot-adds a DIMM of `size` bytes (on NUMA node `node`); returns its id. reserve=False maps
        the backing memory without reserving it (MAP_NORESERVE), for DIMMs larger than the host's
        memory: the guest touches only what it uses."""
        self.dimms += 1
        name = name or f"dimm{self.dimms}"
        backend = {"qom-type": "memory-backend-ram", "id": f"mem-{name}", "size": size}
        if not reserve:
            backend["reserve"] = False
        self.qmp("object-add", **backend)
        device = {"driver": "pc-dimm", "id": name, "memdev": f"mem-{name}"}
        if node is not None:
            device["node"] = node
        self.qmp("device_add", **device)
        return name

    def del_dimm(self, name):
        self.qmp("device_del", id=name)

    def request_virtio_mem(self, size):
        """Asks the guest's virtio-mem driver to plug (or unplug) memory until `size` bytes are plugged."""
        self.qmp("qom-set", path=f"/machine/peripheral/{VIRTIO_MEM}", property="requested-size", value=size)

    def virtio_mem_size(self):
        """The bytes the guest has plugged, as the device reports them."""
        return self.qmp("qom-get", path=f"/machine/peripheral/{VIRTIO_MEM}", property="size")

    def wait_virtio_mem(self, size, timeout=120):
        """Waits until the device reports `size` bytes plugged."""
        deadline = time.monotonic() + timeout
        while (plugged := self.virtio_mem_size()) != size:
            if time.monotonic() > deadline:
                raise GuestError(f"virtio-mem plugged {plugged} bytes, not {size}, after {timeout} s")
            time.sleep(0.1)

    # The command channel

    def sh(self, command, timeout=180, check=True):
        """Runs a shell command in the guest; returns its output (stdout and stderr)."""
        self.channel_socket.settimeout(timeout)
        self.channel_file.write(base64.b64encode(command.encode()).decode() + "\n")
        self.channel_file.flush()
        lines = []
        while True:
            try:
                line = self.channel_file.readline()
            except TimeoutError:
                raise GuestError(f"{command!r} timed out after {timeout} s") from None
            if not line:
                raise GuestError(f"channel closed during {command!r}\n{self.diagnostics()}")
            if line.startswith("__END__ "):
                status = int(line.split()[1])
                break
            lines.append(line.rstrip("\n"))
        output = "\n".join(lines)
        if check and status != 0:
            raise GuestError(f"{command!r} exited {status}:\n{output}\n{self.diagnostics()}")
        return output

    def devices(self):
        """{name: (state, zones, dimm)} for every CPU and memory block."""
        result = {}
        for line in self.sh("e2e devices").splitlines():
            fields = line.split()
            if fields[0].startswith("cpu"):
                result[fields[0]] = ("online" if fields[1] == "1" else "offline", None, None)
            else:
                result[fields[0]] = (fields[1], fields[2], fields[3])
        return result

    def daemon_log(self):
        return self.sh("cat /var/log/hotplugd.log", check=False)

    def diagnostics(self):
        console = self.console.read_text(errors="replace") if self.console.exists() else ""
        log = ""
        if self.process and self.process.poll() is None and self.channel_file:
            try:
                self.channel_socket.settimeout(10)
                command = b"tail -n 200 /var/log/hotplugd.log 2>/dev/null || journalctl -u hotplugd -n 200 --no-pager"
                self.channel_file.write(base64.b64encode(command).decode() + "\n")
                self.channel_file.flush()
                collected = []
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    line = self.channel_file.readline()
                    if not line or line.startswith("__END__"):
                        break
                    collected.append(line)
                log = "".join(collected)
            except Exception as error:  # the channel itself may be what failed
                log = f"(no daemon log: {error})"
        return f"--- guest console ---\n{console[-8000:]}\n--- hotplugd log ---\n{log}"
