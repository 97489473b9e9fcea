"""Acceptance: auto-movable on two NUMA nodes, differentially. Each sequence of DIMMs (on either
node) is hot-added once in a guest where the kernel alone onlines (auto-movable, NUMA-aware), once
under hotplugd in kernel mode and once under hotplugd onlining itself (kernel_online = false); the
zone of every block must be the same. Zones depend on what came before, so each run has a guest of
its own.
"""

import random

import pytest

from conftest import Timer
from test_hotplug import assert_logged_online, kernel_alone, memory, mode_line, start_daemon, userspace
from vm import MIB

# 256 MiB of boot memory on each node; all CPUs on node 0.
NUMA = [256, 256]
BOOT_BLOCKS = 4
DIMMS = 4


def random_sequence(seed):
    """DIMMS DIMMs of 128 MiB .. 1 GiB (128 MiB steps), each on node 0 or 1."""
    rng = random.Random(seed)
    return [(rng.randrange(1, 9) * 128, rng.randrange(2)) for _ in range(DIMMS)]


# (MiB, node) per DIMM, in the order they are added.
SEQUENCES = {
    # Node 1 is filled to its ratio first; then node 0; then node 1 over it.
    "512@1,512@0,256@1,512@1": [(512, 1), (512, 0), (256, 1), (512, 1)],
    **{f"seed{seed}": random_sequence(seed) for seed in (1, 2, 3)},
}


def add_sequence(guest, label, sequence):
    """Adds the DIMMs one after the other, each once the previous one is online; returns
    {block: (zone, node)} of the hot-added blocks."""
    blocks = BOOT_BLOCKS
    for index, (mib, node) in enumerate(sequence):
        timer = Timer(f"{label}: DIMM {index + 1} of {mib} MiB on node {node}")
        guest.add_dimm(mib * MIB, node=node)
        blocks += mib // 128
        guest.sh(f"e2e wait-count {blocks} 1 60; e2e wait-online 60")
        timer.done()
    result = {}
    dimm_nodes = {f"PNP0C80:{index:02x}": node for index, (_, node) in enumerate(sequence)}
    for name, (state, zone, dimm) in memory(guest).items():
        if dimm == "-":
            continue
        assert state == "online", f"{name} is {state}"
        result[name] = (zone, dimm)
    nodes = {line.split()[0]: int(line.split()[4]) for line in guest.sh("e2e devices").splitlines()
             if line.startswith("memory")}
    for name, (_, dimm) in result.items():
        assert nodes[name] == dimm_nodes[dimm], f"{name} of {dimm} is on node {nodes[name]}"
    return {name: (zone, nodes[name]) for name, (zone, _) in result.items()}


def describe(zones):
    """Every block as name:zone@node, in block order, for failure messages."""
    return ", ".join(f"{name}:{zone}@{node}" for name, (zone, node) in sorted(zones.items(), key=lambda i: int(i[0][6:])))


# Every sequence in userspace mode, where hotplugd's own decisions are compared. In kernel mode the
# kernel's own code decides: the fixed sequence and one seed show that the ratio and NUMA-awareness
# hotplugd set are in force, and the other seeds would add two minutes without telling more.
CASES = [(name, False) for name in SEQUENCES] + [(name, True) for name in list(SEQUENCES)[:2]]


@pytest.mark.parametrize(("name", "kernel_online"), CASES,
                         ids=[f"{name}-{'kernel' if online else 'userspace'}-mode" for name, online in CASES])
def test_numa_dimm_sequences_are_zoned_as_by_the_kernel(boot, name, kernel_online):
    sequence = SEQUENCES[name]
    by_kernel = kernel_alone(boot, f"numa {name}", lambda guest: add_sequence(guest, f"numa {name}: kernel alone",
                                                                                sequence), numa=NUMA)

    guest = boot(numa=NUMA)
    start_daemon(guest, config=None if kernel_online else userspace())
    mode = "kernel" if kernel_online else "userspace"
    assert f"mode={mode}" in mode_line(guest)
    by_daemon = add_sequence(guest, f"numa {name}: hotplugd {mode} mode", sequence)

    differing = {block: (by_kernel.get(block), where) for block, where in by_daemon.items()
                 if by_kernel.get(block) != where}
    if by_daemon != by_kernel:  # The message says all; pytest's own diff of the dicts would bury it.
        pytest.fail(
            f"sequence {name} {sequence} (MiB, node), hotplugd in {mode} mode: blocks whose (zone, node) differ "
            f"(kernel alone, hotplugd): {differing}\nkernel alone: {describe(by_kernel)}\n"
            f"hotplugd: {describe(by_daemon)}", pytrace=False)
    assert_logged_online(guest, sorted(by_daemon), by="kernel" if kernel_online else "hotplugd")
