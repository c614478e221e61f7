"""Report speed: a weekly report over 10,080 decisions against a bare papermill + nbconvert run.

The yardstick executes a notebook of one code cell importing numpy, pandas and matplotlib (the
imports any notebook with a table and a figure pays) through papermill and renders it with
nbconvert's HTML exporter: the floor a report cannot go under (kernel start, those imports,
execution, rendering). The weekly report adds labkit's imports, reading the journal, judging the
week with its evidence, and the dossier's tables and figures. The two alternate, so a busy machine
slows both alike; each time is the median of the pairs, wall clock and CPU (this process and the
kernels it started). The target is a ratio of at most 1.5x (issue 17). The load average before and
after is printed too: the report overlaps its own work with its kernel's start-up, which a machine
busy with other work takes away, so its ratio is only comparable at a similar load.

    .venv/bin/python benchmarks/reports.py [pairs]
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from labkit.config.loading import load_config
from labkit.reports.render import render_report
from labkit.session.runner import run_session

YARDSTICK = "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt"
TARGET = 1.5


def _cpu() -> float:
    own, kernels = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kernels.ru_utime + kernels.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Return the wall and CPU seconds of `run()` (CPU counts the kernels it started and ended)."""
    wall, cpu = time.perf_counter(), _cpu()
    run()
    return time.perf_counter() - wall, _cpu() - cpu


def bare(directory: Path, code: str = YARDSTICK) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    source, out = directory / "bare.ipynb", directory / "bare-out.ipynb"
    nbformat.write(nb, source)
    papermill.execute_notebook(
        str(source), str(out), kernel_name="python3", progress_bar=False, log_output=False
    )
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nbformat.read(out, as_version=4))
    (directory / "bare.html").write_text(body)


def weekly(home: Path) -> None:
    render_report("weekly", "bench", home, load_config(home, {}, environ={}), week="2026-W02")


def main(pairs: int = 3) -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        overrides = {
            "session.name": "bench",
            "session.pace": "fast",
            "session.since": "2026-01-05",
            "session.until": "2026-01-12",
        }
        result = run_session(load_config(None, overrides, environ={}), home, progress=False)
        weekly(home)  # warm both sides' imports once, so neither pays a cold disk
        bare(home)
        floors, reports = [], []
        for _ in range(pairs):
            floors.append(timed(lambda: bare(home)))
            reports.append(timed(lambda: weekly(home)))
    floor = [statistics.median(t[i] for t in floors) for i in (0, 1)]
    report = [statistics.median(t[i] for t in reports) for i in (0, 1)]
    print(f"weekly report over {result.total:,} decisions: {report[0]:.2f} s wall, {report[1]:.2f} s CPU")
    print(f"bare papermill + nbconvert, numpy/pandas/matplotlib: {floor[0]:.2f} s wall, {floor[1]:.2f} s CPU")
    print(
        f"ratio: {report[0] / floor[0]:.2f}x wall, {report[1] / floor[1]:.2f}x CPU "
        f"(target <= {TARGET}x; median of {pairs} pairs)"
    )
    after = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f} before, {after:.2f} after, on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
