"""Model speed: training, a whole-process replay with the ensemble, and live per-decision latency.

Cases (each in its own process, so one case's imports and memory do not hide another's):

- train: `labkit train` on --train-bars synthetic 1-minute bars, 5 folds x 3 seeds, as a process;
- replay: `labkit backtest --strategy model` over 1,000,000 bars as a process (features,
  predictions, gates, broker; with and without the journal);
- live: one bar at a time through the engine with the ensemble, as a clock-paced session decides
  (incremental features, the three members, calibration, every gate): p50 and p99 per decision.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ml.py [--bars 1000000] [--train-bars 500000]
        [--home HOME --model ID]   (a model trained before: the replays and live cases only)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UNTIL = "2026-03-01"
ROOT = Path(__file__).resolve().parent.parent


def checkout_env() -> dict[str, str]:
    """Return the environment that runs this checkout's labkit, whatever is installed."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def labkit(home: str, *args: str) -> tuple[float, dict, float]:
    """Run `labkit --home HOME ARGS --json`; return seconds, the printed object and peak MiB."""
    env = checkout_env()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.cli", "--home", home, *args, "--json", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else b""
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"labkit {' '.join(args)} failed: {err}")
    return seconds, json.loads(out), usage.ru_maxrss / 1024


def live(home: str, model_id: str, bars_count: int) -> dict[str, float]:
    """Decide `bars_count` bars one at a time through a paper engine with the model."""
    import numpy as np

    from labkit.config.assembly import build_engine
    from labkit.config.loading import load_config
    from labkit.data.synthetic import synthetic_bars
    from labkit.timeutil import parse_instant

    until = parse_instant(UNTIL)
    config = load_config(None, {"session.strategy": "model", "strategies.model.model": model_id}, environ={})
    engine = build_engine(config, "paper", home=Path(home))
    history = engine.strategy.history
    bars = synthetic_bars("BTC/USDT", "1m", until - (bars_count + history) * 60_000, until)
    engine.prime(bars.iloc[:history])
    times = []
    for i in range(history, len(bars)):
        one = bars.iloc[i : i + 1]
        start = time.perf_counter()
        engine.process(one)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "decisions": len(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--train-bars", type=int, default=500_000)
    parser.add_argument("--live-bars", type=int, default=10_000)
    parser.add_argument("--case", choices=("live",), help=argparse.SUPPRESS)
    parser.add_argument("--home", help="a labkit home holding --model (with it, no training)")
    parser.add_argument("--model", help="a model id trained before in --home")
    args = parser.parse_args()
    if args.case == "live":
        print(json.dumps(live(args.home, args.model, args.live_bars)))
        return
    market = ["--source", "synthetic", "--symbol", "BTC/USDT", "--timeframe", "1m", "--until", UNTIL]
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or scratch
        if args.model:  # a model trained before (--home HOME --model ID): skip the training
            model = args.model
        else:
            seconds, trained, peak = labkit(
                home, "train", *market, "--max-bars", str(args.train_bars), "--folds", "5", "--seeds", "3"
            )
            shape = f"{args.train_bars:,} bars x 5 folds x 3 seeds"
            print(f"train: {shape}: {seconds:.1f} s (peak {peak:,.0f} MiB)")
            print(f"  out-of-sample AUC {trained['auc_mean']:.4f} ± {trained['auc_std']:.4f}")
            model = trained["model_id"]
        for journal in (False, True):
            extra = ["--journal", str(Path(home) / "bt.jsonl")] if journal else []
            seconds, summary, peak = labkit(
                home,
                "backtest",
                *market,
                "--max-bars",
                str(args.bars),
                "--strategy",
                "model",
                "--model",
                model,
                *extra,
            )
            label = "with" if journal else "no"
            print(
                f"replay with the ensemble, {summary['bars']:,} bars, {label} journal: {seconds:.2f} s "
                f"as a process ({summary['bars'] / seconds:,.0f} bars/s, peak {peak:,.0f} MiB, "
                f"{summary['trades']} trades)"
            )
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                "live",
                "--home",
                home,
                "--model",
                model,
                "--live-bars",
                str(args.live_bars),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=checkout_env(),
        )
        row = json.loads(out.stdout)
        print(
            f"live, one bar at a time through the engine ({row['decisions']:,} decisions): "
            f"p50 {row['p50_ms']:.3f} ms, p99 {row['p99_ms']:.3f} ms"
        )


if __name__ == "__main__":
    main()
