"""Sweep throughput: 200 sma_cross backtests (a 20 x 10 fast/slow grid) of 100,000 1-minute bars each.

Runs the same sweep as a whole `labkit sweep` process with 1 worker and with 2, each in a fresh
home, and prints for each: the wall time (start-up, imports, data, pool, runs, tables), the time
inside the sweep, the sum of the runs' own seconds, the per-run overhead and the peak memory of
each worker process. The overhead is what the sweep costs beyond its runs, per run, as a share of
the mean run time: (wall x workers - sum of run seconds) / runs / mean run seconds. Targets: a
speed-up of 1.7x or more with 2 workers, an overhead under 20%, under 500 MB per worker.

    .venv/bin/python benchmarks/sweep.py [--workers 1 2] [--bars 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

UNTIL_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z
FAST = list(range(5, 105, 5))  # 20 values
SLOW = list(range(120, 420, 30))  # 10 values, all above every fast


def grid(bars: int) -> dict[str, object]:
    from labkit.timeutil import iso_s

    return {
        "name": "bench",
        "source": "synthetic",
        "strategy": "sma_cross",
        "params": {"fast": FAST, "slow": SLOW},
        "symbols": ["BTC/USDT"],
        "timeframes": ["1m"],
        "windows": [[iso_s(UNTIL_MS - bars * 60_000), iso_s(UNTIL_MS)]],
        "costs": [{"fee": 0.001, "slippage": 0.0}],
    }


def sweep(workers: int, bars: int) -> dict[str, float]:
    """Run the sweep in a fresh home as a `labkit sweep` process; return its figures."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        path = home / "grid.yaml"
        path.write_text(yaml.safe_dump(grid(bars)))
        cmd = [sys.executable, "-m", "labkit.cli", "--home", str(home), "sweep", "--grid", str(path)]
        cmd += ["--workers", str(workers), "--json"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        peaks: dict[int, int] = {}
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                for child in parent.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        peaks[child.pid] = max(peaks.get(child.pid, 0), child.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        out, err = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"labkit sweep failed ({proc.returncode}): {err}")
        summary = json.loads(out)
        results = pd.read_parquet(home / "data" / "sweeps" / "bench" / "results.parquet")
    seconds = results["seconds"]
    runs = len(results)
    # The largest processes are the workers (the resource tracker is a few MB).
    worker_peaks = sorted(peaks.values(), reverse=True)[:workers]
    return {
        "workers": workers,
        "runs": runs,
        "failed": int(results["error"].notna().sum()),
        "wall_s": wall,
        "in_sweep_s": summary["seconds"],
        "run_s_sum": float(seconds.sum()),
        "run_s_mean": float(seconds.mean()),
        "overhead_share": (wall * workers - float(seconds.sum())) / runs / float(seconds.mean()),
        "in_sweep_overhead_share": (summary["seconds"] * workers - float(seconds.sum()))
        / runs
        / float(seconds.mean()),
        "peak_worker_mib": max(worker_peaks) / 2**20 if worker_peaks else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bars", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"labkit sweep: {len(FAST) * len(SLOW)} sma_cross runs of {args.bars:,} synthetic 1-minute bars each "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f})"
    )
    figures = []
    for workers in args.workers:
        f = sweep(workers, args.bars)
        figures.append(f)
        print(
            f"  {workers} worker(s): wall {f['wall_s']:.1f} s (in the sweep {f['in_sweep_s']:.1f} s), "
            f"{f['runs']} runs ({f['failed']} failed), run time sum {f['run_s_sum']:.1f} s, "
            f"mean {f['run_s_mean'] * 1000:.0f} ms; overhead per run {f['overhead_share']:.1%} of a run "
            f"({f['in_sweep_overhead_share']:.1%} inside the sweep); peak worker RSS "
            f"{f['peak_worker_mib']:.0f} MiB"
        )
    if len(figures) >= 2:
        first, last = figures[0], figures[-1]
        wall = first["wall_s"] / last["wall_s"]
        inside = first["in_sweep_s"] / last["in_sweep_s"]
        print(
            f"  speed-up {first['workers']} -> {last['workers']} workers: {wall:.2f}x (wall), "
            f"{inside:.2f}x (in the sweep); target >= 1.7x for 1 -> 2"
        )
    print(f"  load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
