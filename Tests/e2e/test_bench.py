"""The benchmark, cut down to a smoke run so that `make bench` cannot rot: every measurement
runs and the report has every table, with a figure in each cell. Timings are not checked."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run(tmp_path):
    report, plot = tmp_path / "BENCHMARKS.md", tmp_path / "plot.png"
    subprocess.run([sys.executable, str(ROOT / "Tests/Benchmarks/bench.py"), "--smoke", "--output", str(report),
                    "--plot", str(plot)], cwd=ROOT, check=True, timeout=1800)
    text = report.read_text()
    for heading in ["## Memory hot-add", "## Side by side in one guest", "## CPU hot-add: 3 CPUs",
                    "## The daemon's own cost per event", "## Start-up scan", "## The running daemon", "## The binary"]:
        assert heading in text, text
    rows = {
        "memory": [line for line in text.split("## Side by side in one guest")[0].splitlines()
                   if re.match(r"\| \d+ GiB \(\d+ blocks\)", line)],
        "events": [line for line in text.splitlines() if line.startswith(("| online_movable |", "| auto-movable |"))],
    }
    assert len(rows["memory"]) == 1 and len(rows["events"]) == 2, text
    for line in rows["memory"]:
        seconds = [float(x) for x in re.findall(r"(\d+\.\d+) s \(", line)]
        assert len(seconds) == 4 and all(s > 0 for s in seconds), line
    # The paired table: one row (1 GiB, 1 vCPU), a time for each of the 5 set-ups and 3 ratios.
    paired = text.split("## Side by side in one guest")[1].split("\n## ")[0]
    paired_rows = [line for line in paired.splitlines() if re.match(r"\| \d+ GiB \(\d+ blocks\) \| 1 \|", line)]
    assert len(paired_rows) == 1, paired
    assert len(re.findall(r"\d+\.\d+ s \(", paired_rows[0])) == 5, paired_rows[0]
    assert len(re.findall(r"\d+\.\d+x \[", paired_rows[0])) == 3, paired_rows[0]
    assert "Not measured" not in paired, paired
    assert re.search(r"\| \d+\.\d MiB \| \d+ \| \d+ \|", text), text
    binary = text.split("## The binary")[1]
    assert re.search(r"\| hotplugd \| \d+\.\d MiB \| \d+\.\d MiB \|\n", binary), binary
    assert plot.stat().st_size > 1000
