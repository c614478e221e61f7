"""Journal reading: a million decision lines loaded and grouped by blocking stage and reason.

labkit's way (`read_journal` with the columns a block tally needs, then `blocking_table`) against
duckdb reading the same JSON Lines and grouping in SQL, and the whole frame every report starts
from. The journal is a real one: a 1,000,000-bar sma_cross backtest of the synthetic market.

    .venv/bin/python benchmarks/journal.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from labkit.analysis.trips import blocking_table
from labkit.engine.journal import read_journal


def best(run: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decisions.jsonl"
        labkit = Path(sys.executable).with_name("labkit")
        subprocess.run(
            [str(labkit), "--home", tmp, "backtest", "--source", "synthetic", "--symbol", "BTC/USDT",
             "--timeframe", "1m", "--until", "2026-03-01", "--max-bars", str(args.lines),
             "--journal", str(path), "--json"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        size = path.stat().st_size

        def labkit_group() -> object:
            return blocking_table(read_journal(path, ["proposed", "stage", "reason"]))

        def duckdb_group() -> object:
            query = (
                "SELECT gate_trace.stage AS stage, gate_trace.reason AS reason, count(*) AS n "
                "FROM read_json($p, format='newline_delimited') GROUP BY ALL"
            )
            return duckdb.sql(query, params={"p": str(path)}).fetchall()

        labkit_group()  # the page cache holds the file for every contender alike
        ours, theirs = best(labkit_group), best(duckdb_group)
        whole = best(lambda: read_journal(path), repeat=2)
    print(f"journal: {args.lines:,} lines, {size / 1e6:.0f} MB")
    print(f"labkit read_journal (3 columns) + blocking_table: {ours:.2f} s")
    print(f"duckdb read_json + GROUP BY: {theirs:.2f} s")
    print(f"ratio: {ours / theirs:.2f}x (target <= 1.5x)")
    print(f"labkit read_journal, every column (what reports load): {whole:.2f} s")


if __name__ == "__main__":
    main()
