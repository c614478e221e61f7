"""labkit against backtesting.py: sma_cross 10/30 over the same 1,000,000 synthetic 1-minute bars.

Each side runs as a whole process, as a user would start it: `labkit backtest --gates off --json`
(start-up, imports, making the market, the engine, the summary), and backtesting.py reading the
same bars from a Parquet file and running its `FractionalBacktest` (units in fractions of a coin,
like labkit's all-in book) with the same fee on each side. The pairs run alternately, three times;
the medians of wall time and their ratio are printed, with each side's CPU time (user + system)
and trade count, so a reader sees both did the same work.

    .venv/bin/python benchmarks/vs_backtesting.py [--bars 1000000] [--pairs 3]

backtesting.py is the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNTIL = "2026-01-05"
FEE = 0.001
FAST, SLOW = 10, 30


def backtesting_side(path: str) -> None:
    """Run backtesting.py's sma_cross over the bars in `path` and print its trade count as JSON."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        # labkit's rule: buy all-in when the fast average crosses above the slow one (strictly, as
        # backtesting.lib.crossover also has it), sell everything when it crosses below.
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, FAST)
            self.slow = self.I(SMA, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    bars = pd.read_parquet(path)
    bars.index = bars.index.tz_localize(None)  # backtesting.py wants naive times
    data = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    # All-in at 0.2% a round trip, 19,000 round trips leave a few 1e-18 of the 10,000: units of
    # 1e-30 of a coin keep every entry affordable to the end, as labkit's real-valued units are.
    test = FractionalBacktest(
        data, SmaCross, cash=10_000, commission=FEE, finalize_trades=True, fractional_unit=1e-30
    )
    stats = test.run()
    print(json.dumps({"trades": int(stats["# Trades"])}))


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `cmd`; return its wall seconds, CPU seconds (user + system) and what it printed."""
    # Both streams go to files: a child that fills one pipe while we read the other would wait for
    # ever (backtesting.py draws a progress bar on stderr). wait4 reaps it and says what CPU it used.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd[:4])}... failed:\n{err.read().decode()}")
        return wall, usage.ru_utime + usage.ru_stime, out.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--backtesting-side", metavar="PARQUET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backtesting_side:
        backtesting_side(args.backtesting_side)
        return
    try:
        import backtesting  # noqa: F401
    except ImportError:
        print("backtesting.py is not installed: nothing to compare with (pip install -e '.[bench]')")
        return
    sys.path.insert(0, str(ROOT))
    from labkit.data.synthetic import synthetic_bars
    from labkit.timeutil import parse_instant

    # The checkout's labkit, whatever an installed copy says.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    until = parse_instant(UNTIL)
    with tempfile.TemporaryDirectory() as tmp:
        parquet = str(Path(tmp) / "bars.parquet")
        synthetic_bars("BTC/USDT", "1m", until - args.bars * 60_000, until).to_parquet(parquet)
        labkit = [sys.executable, "-m", "labkit.cli", "--home", str(Path(tmp) / "home"), "backtest"]
        labkit += ["--source", "synthetic", "--symbol", "BTC/USDT", "--timeframe", "1m", "--strategy"]
        labkit += ["sma_cross", "--fast", str(FAST), "--slow", str(SLOW), "--fee", str(FEE)]
        labkit += ["--until", UNTIL, "--max-bars", str(args.bars), "--gates", "off", "--json", "--yes"]
        theirs = [sys.executable, __file__, "--backtesting-side", parquet]
        print(
            f"sma_cross {FAST}/{SLOW} over {args.bars:,} synthetic 1m bars, all-in with fractional units, "
            f"fee {FEE:g} each side; {os.cpu_count()} cores, Python {sys.version.split()[0]}"
        )
        print(f"{'pair':<6}{'labkit s':>10}{'cpu s':>8}{'backtesting.py s':>18}{'cpu s':>8}{'ratio':>8}")
        ours_wall, theirs_wall, rows = [], [], []
        for pair in range(1, args.pairs + 1):
            wall, cpu, out = run(labkit, env)
            summary = json.loads(out)
            t_wall, t_cpu, t_out = run(theirs, env)
            ours_wall.append(wall)
            theirs_wall.append(t_wall)
            rows.append((summary["trades"], json.loads(t_out)["trades"]))
            print(f"{pair:<6}{wall:>10.2f}{cpu:>8.2f}{t_wall:>18.2f}{t_cpu:>8.2f}{t_wall / wall:>7.1f}x")
        ours, theirs_median = statistics.median(ours_wall), statistics.median(theirs_wall)
        print(
            f"median: labkit {ours:.2f} s, backtesting.py {theirs_median:.2f} s: "
            f"labkit is {theirs_median / ours:.1f}x faster"
        )
        print(f"trades: labkit {rows[-1][0]:,} (entries), backtesting.py {rows[-1][1]:,}")


if __name__ == "__main__":
    main()
