"""Report speed: a weekly report over 10,080 decisions against a bare papermill + nbconvert run.

The bare run executes a notebook with one empty code cell through papermill and renders it with
nbconvert's HTML exporter: the floor every report pays (kernel start, execution, rendering). The
weekly report adds reading the journal, the verdict and its evidence, and the dossier's figures.

    .venv/bin/python benchmarks/reports.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from labkit.config.loading import load_config
from labkit.reports.render import render_report
from labkit.session.runner import run_session

# What every labkit report's kernel imports before it reads a line: pandas, matplotlib and labkit.
IMPORTS = "from labkit import readiness\nfrom labkit.reports import figures, views"


def bare(directory: Path, code: str = "") -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    source, out = directory / "empty.ipynb", directory / "empty-out.ipynb"
    nbformat.write(nb, source)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(source), str(out), kernel_name="python3", progress_bar=False, log_output=False
    )
    body, _ = HTMLExporter(exclude_input=True).from_notebook_node(nbformat.read(out, as_version=4))
    (directory / "empty.html").write_text(body)
    return time.perf_counter() - start


def weekly(home: Path) -> float:
    config = load_config(home, {}, environ={})
    start = time.perf_counter()
    render_report("weekly", "bench", home, config, week="2026-W02")
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        overrides = {
            "session.name": "bench",
            "session.pace": "fast",
            "session.since": "2026-01-05",
            "session.until": "2026-01-12",
        }
        result = run_session(load_config(None, overrides, environ={}), home, progress=False)
        bare(home)  # warm the kernel's imports once, so neither side pays a cold disk
        floor = min(bare(home) for _ in range(2))
        imports = min(bare(home, IMPORTS) for _ in range(2))
        report = min(weekly(home) for _ in range(2))
    print(f"weekly report over {result.total:,} decisions: {report:.2f} s")
    print(f"bare papermill + nbconvert, one empty cell: {floor:.2f} s")
    print(f"ratio: {report / floor:.2f}x (target <= 1.2x)")
    print(f"the same, one cell importing labkit's report modules: {imports:.2f} s ({imports / floor:.2f}x)")
    print(f"ratio to that: {report / imports:.2f}x")


if __name__ == "__main__":
    main()
