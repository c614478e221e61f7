"""Label speed: `triple_barrier_labels` over a million bars, in process.

    .venv/bin/python benchmarks/labels.py [--bars 1000000] [--horizon 60]

Prints one JSON object: the bars, the horizon, the seconds of the best of three runs, and the share
of labels each barrier decided. The target is under 3 s for a million bars.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from labkit.features.definitions import atr
from labkit.features.labels import average_uniqueness, triple_barrier_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--horizon", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, args.bars)))
    opens = np.r_[100.0, close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.0005, args.bars)) * close
    high, low = np.maximum(opens, close) + spread, np.minimum(opens, close) - spread
    vol = atr(high, low, close, 14)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = triple_barrier_labels(opens, high, low, close, vol, args.horizon, 2.0, 2.0)
        times.append(time.perf_counter() - start)
    known = ~np.isnan(result.label)
    rows = np.flatnonzero(known)
    start = time.perf_counter()
    average_uniqueness(rows, result.end[rows].astype(np.int64))
    weights = time.perf_counter() - start
    shares = {
        name: float(np.mean(result.label[known] == v))
        for name, v in (("profit", 1), ("stop", -1), ("vertical", 0))
    }
    print(json.dumps({"bars": args.bars, "horizon": args.horizon, "seconds": round(min(times), 3),
                      "uniqueness_seconds": round(weights, 3), "shares": shares}))  # fmt: skip


if __name__ == "__main__":
    main()
