"""A book over a universe: labkit's book engine against vectorbt's cash-sharing portfolio.

100 synthetic symbols x 100,000 one-minute bars (10 million symbol-bars) by default, sma_cross
10/30 on each, one book with shared cash. Three figures:

- labkit in-process: `BookEngine.process` over the aligned universe, without a journal (bars made
  and aligned beforehand, not timed), in symbol-bars a second;
- labkit whole process: `labkit backtest --symbols ... --gates off --json`, as a user starts it
  (imports, making the market, the engine, the summary);
- vectorbt: `Portfolio.from_signals(..., group_by=True, cash_sharing=True)` on the same entries and
  exits (labkit's own sma_cross proposals), filled at the next bar's open with the same fee, each
  entry buying a fixed slice (the starting capital / the number of symbols); its first call
  compiles with numba, so the second call is the one compared (both printed).

The two are not the same product: labkit runs its gate chain and writes nothing here, vectorbt
fills by its own rules. The ratio says how long each takes to decide the same signals as one book.

    .venv/bin/python benchmarks/portfolio.py [--symbols 100] [--bars 100000]

vectorbt is the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = 1_767_571_200_000  # 2026-01-05T00:00Z
FEE = 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--bars", type=int, default=100_000)
    args = parser.parse_args()
    from labkit.config.assembly import build_book_engine
    from labkit.config.loading import load_config
    from labkit.data.synthetic import universe_bars
    from labkit.data.universe import align

    symbols = [f"S{i:03d}/USD" for i in range(args.symbols)]
    until = T0 + args.bars * 60_000
    start = time.perf_counter()
    universe = align(universe_bars(symbols, "1m", T0, until))
    made = time.perf_counter() - start
    cells = len(universe) * len(symbols)
    print(f"universe: {len(symbols)} symbols x {len(universe):,} bars = {cells:,} symbol-bars ({made:.1f} s)")

    config = load_config(None, {}, environ={"LABKIT_GATES__ENABLED": '["data"]'})
    engine = build_book_engine(config, symbols, "backtest")
    start = time.perf_counter()
    engine.process(universe)
    inside = time.perf_counter() - start
    print(
        f"labkit in-process:   {inside:6.2f} s  {cells / inside / 1e6:5.2f}M symbol-bars/s  "
        f"final equity {engine.equity_curve()[-1]:,.2f}"
    )

    whole = _whole_process(symbols, until)
    if whole is not None:
        print(f"labkit whole process: {whole:5.2f} s  (labkit backtest --symbols ... --gates off --json)")

    try:
        import vectorbt as vbt
    except ImportError:
        print("vectorbt: not installed (pip install -e '.[bench]'); no ratio")
        return
    import pandas as pd

    index = pd.to_datetime(universe.times, unit="ms", utc=True)
    close = pd.DataFrame(universe.columns["close"], index=index, columns=symbols)
    next_open = pd.DataFrame(universe.columns["open"], index=index, columns=symbols).shift(-1)
    side = _sides(engine, universe)
    entries = pd.DataFrame(side == 1, index=index, columns=symbols)
    exits = pd.DataFrame(side == -1, index=index, columns=symbols)

    def run() -> float:
        t = time.perf_counter()
        pf = vbt.Portfolio.from_signals(
            close,
            entries,
            exits,
            price=next_open,
            fees=FEE,
            size=10_000.0 / len(symbols),
            size_type="value",
            init_cash=10_000.0,
            group_by=True,
            cash_sharing=True,
            freq="1min",
        )
        value = float(pf.value().iloc[-1])
        took = time.perf_counter() - t
        print(f"  final value {value:,.2f}")
        return took

    first = run()
    second = run()
    print(f"vectorbt from_signals (cash sharing): first {first:.2f} s (compiling), second {second:.2f} s")
    print(f"ratio labkit in-process / vectorbt (second call): {inside / second:.2f}x the time")


def _sides(engine, universe) -> np.ndarray:
    # Each symbol's sma_cross proposals on the universe grid (HOLD where it has no bar).
    side = np.zeros(universe.present.shape, dtype="int8")
    for j, symbol in enumerate(universe.symbols):
        rows = np.flatnonzero(universe.present[:, j])
        side[rows, j] = engine.strategies[symbol].propose(universe.bars(symbol)).side
    return side


def _whole_process(symbols: list[str], until: int) -> float | None:
    labkit = Path(sys.executable).parent / "labkit"
    with_symbols = subprocess.run([str(labkit), "backtest", "--help"], capture_output=True, text=True)
    if "--symbols" not in with_symbols.stdout:
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        command = [
            str(labkit),
            "--home",
            home,
            "backtest",
            "--source",
            "synthetic",
            "--symbols",
            ",".join(symbols),
            "--timeframe",
            "1m",
            "--since",
            str(T0),
            "--until",
            str(until),
            "--gates",
            "off",
            "--json",
        ]
        env = {**os.environ, "LABKIT_TRIALS": os.path.join(home, "trials.jsonl")}
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        took = time.perf_counter() - start
    if done.returncode != 0:
        print(f"labkit whole process failed ({done.returncode}): {done.stderr.strip()[-300:]}")
        return None
    summary = json.loads(done.stdout)
    print(
        f"  whole process: {len(summary.get('symbols', {}))} symbols, equity {summary['final_equity']:,.2f}"
    )
    return took


if __name__ == "__main__":
    main()
