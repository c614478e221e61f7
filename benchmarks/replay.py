"""Replay speed: `backtest --strategy sma_cross` on 1,000,000 synthetic 1-minute bars.

Prints bars per second and peak memory, with and without the journal, measured in-process (the
engine alone, bars already in memory), as a fast-paced paper session (journal, tape, state and
heartbeat at every checkpoint; with and without fsync, which is what durability costs) and as a
whole `labkit backtest` process (start-up, imports,
making the market, validation, engine, output). Each case runs in a fresh process so one case's
memory does not hide another's.

Its yardstick, measured in the same run: the same strategy written as a vectorised numpy
computation over the same bars (no gates, no journal, no book: what a notebook of array code would
do), whose final equity must equal the engine's with gates off. Each case prints its time as a
multiple of the yardstick's.

    .venv/bin/python benchmarks/replay.py [--bars 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNTIL = "2026-01-05"
ROOT = Path(__file__).resolve().parent.parent


def labkit_argv() -> tuple[list[str], dict[str, str]]:
    """Return the argv and environment that run this checkout's labkit, whatever is installed."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "labkit.cli"], {**os.environ, "PYTHONPATH": path}


def in_process(bars_count: int, journal: bool) -> dict[str, float]:
    from labkit.config.loading import load_config
    from labkit.data.synthetic import synthetic_bars
    from labkit.engine.journal import JournalWriter
    from labkit.research.backtest import run_backtest
    from labkit.timeutil import parse_instant

    until = parse_instant(UNTIL)
    bars = synthetic_bars("BTC/USDT", "1m", until - bars_count * 60_000, until)
    config = load_config(None, {}, environ={})
    with tempfile.TemporaryDirectory() as tmp:
        writer = JournalWriter(Path(tmp) / "decisions.jsonl") if journal else None
        start = time.perf_counter()
        result = run_backtest(config, bars, writer)
        if writer is not None:
            writer.close()
        seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "bars_per_s": len(bars) / seconds,
        "peak_mib": peak_mib,
        "trades": result.summary["trades"],
    }


def vectorised(bars_count: int) -> dict[str, float]:
    """sma_cross 10/30 as array code: crosses at the close, all-in fills at the next open, fee each side."""
    import numpy as np

    from labkit.config.loading import load_config
    from labkit.data.synthetic import synthetic_bars
    from labkit.research.backtest import run_backtest
    from labkit.timeutil import parse_instant

    until = parse_instant(UNTIL)
    bars = synthetic_bars("BTC/USDT", "1m", until - bars_count * 60_000, until)
    config = load_config(None, {"gates.enabled": ["data"]}, environ={})
    fee, capital, fast, slow = config.broker.fee, config.session.capital, 10, 30
    start = time.perf_counter()
    close, opens = bars["close"].to_numpy(), bars["open"].to_numpy()
    sums = np.concatenate([[0.0], np.cumsum(close)])
    f = np.full(len(close), np.nan)
    s = np.full(len(close), np.nan)
    f[fast - 1 :] = (sums[fast:] - sums[:-fast]) / fast
    s[slow - 1 :] = (sums[slow:] - sums[:-slow]) / slow
    up = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
    down = (f[:-1] > s[:-1]) & (f[1:] < s[1:])
    # A signal at bar t fills at t+1's open; the last bar's signal never fills.
    buys, sells = np.flatnonzero(up[:-1]) + 2, np.flatnonzero(down[:-1]) + 2
    # Alternate from flat: each buy, then the first sell after it.
    events = np.concatenate([buys, sells])
    kinds = np.concatenate([np.ones(len(buys), "int8"), -np.ones(len(sells), "int8")])
    order = np.argsort(events, kind="stable")
    events, kinds = events[order], kinds[order]
    keep = np.flatnonzero(np.diff(np.concatenate([[-1], kinds])) != 0)
    events, kinds = events[keep], kinds[keep]
    entries = events[kinds == 1]
    exits = events[kinds == -1]
    n = min(len(entries), len(exits))
    growth = np.prod(opens[exits[:n]] * (1 - fee) / (opens[entries[:n]] * (1 + fee)))
    equity = capital * growth
    if len(entries) > n:  # an open position, marked at the last close without the exit fee
        equity = equity * close[-1] / (opens[entries[-1]] * (1 + fee))
    seconds = time.perf_counter() - start
    engine = run_backtest(config, bars).summary["final_equity"]
    if not np.isclose(equity, engine, rtol=1e-9, atol=1e-12):
        raise SystemExit(f"the yardstick's final equity {equity!r} is not the engine's {engine!r}")
    return {"seconds": seconds, "bars_per_s": len(bars) / seconds, "peak_mib": 0.0, "trades": len(entries)}


def session(bars_count: int, fsync: bool) -> dict[str, float]:
    """A fast-paced paper session: journal, tape, state and heartbeat at every checkpoint.

    With `fsync` False, os.fsync is a no-op: the difference is what durability costs.
    """
    from labkit.config.loading import load_config
    from labkit.session.runner import run_session
    from labkit.timeutil import iso_s, parse_instant

    if not fsync:
        os.fsync = lambda fd: None  # type: ignore[assignment]
    until = parse_instant(UNTIL)
    overrides = {
        "session.name": "bench",
        "session.pace": "fast",
        "session.since": iso_s(until - bars_count * 60_000),
        "session.until": UNTIL,
    }
    config = load_config(None, overrides, environ={})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_session(config, Path(tmp), progress=False)
        seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "bars_per_s": result.decided / seconds, "peak_mib": peak_mib}


def whole_process(bars_count: int, journal: bool) -> dict[str, float]:
    labkit, env = labkit_argv()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            *labkit,
            "--home",
            tmp,
            "backtest",
            "--source",
            "synthetic",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1m",
            "--strategy",
            "sma_cross",
            "--until",
            UNTIL,
            "--max-bars",
            str(bars_count),
            "--json",
        ]
        if journal:
            cmd += ["--journal", str(Path(tmp) / "decisions.jsonl")]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out = proc.stdout.read() if proc.stdout else b""
        if status != 0:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"labkit backtest failed: {err}")
    bars = json.loads(out)["bars"]
    return {"seconds": seconds, "bars_per_s": bars / seconds, "peak_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    cases = ("vectorised", "inproc", "inproc-journal", "session", "session-nofsync")
    parser.add_argument("--case", choices=cases, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case in ("session", "session-nofsync"):
        print(json.dumps(session(args.bars, fsync=args.case == "session")))
        return
    if args.case == "vectorised":
        print(json.dumps(vectorised(args.bars)))
        return
    if args.case:  # a child measuring one in-process case
        print(json.dumps(in_process(args.bars, journal=args.case == "inproc-journal")))
        return
    print(
        f"sma_cross 10/30 backtest, {args.bars:,} synthetic 1m bars, full gate chain, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    print(f"{'case':<34}{'seconds':>9}{'bars/s':>12}{'peak MiB':>10}{'x yardstick':>13}")
    yardstick = None
    for case, label in (
        ("vectorised", "yardstick: vectorised numpy"),
        ("inproc", "in-process, no journal"),
        ("inproc-journal", "in-process, with journal"),
        ("session-nofsync", "paper session, no fsync"),
        ("session", "paper session, durable checkpoints"),
    ):
        # Each case in a fresh process, so one case's memory does not hide another's.
        out = subprocess.run(
            [sys.executable, __file__, "--bars", str(args.bars), "--case", case],
            check=True,
            capture_output=True,
            text=True,
            env=labkit_argv()[1],
        ).stdout
        row = json.loads(out)
        yardstick = yardstick or row["seconds"]
        _print_row(label, row, yardstick)
    for journal in (False, True):
        row = whole_process(args.bars, journal)
        _print_row(f"whole process, {'with' if journal else 'no'} journal", row, yardstick)


def _print_row(label: str, row: dict[str, float], yardstick: float | None) -> None:
    times = f"{row['seconds'] / yardstick:>12.1f}x" if yardstick else ""
    peak = f"{row['peak_mib']:>10.0f}" if row["peak_mib"] else f"{'':>10}"
    print(f"{label:<34}{row['seconds']:>9.2f}{row['bars_per_s']:>12,.0f}{peak}{times}")


if __name__ == "__main__":
    main()
