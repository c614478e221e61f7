"""Backtests: replay a range of bars through the engine and summarise the result.

The summary's definitions are fixed so results can be checked against other backtesters:
`trades` counts entries (a position opened, closed or still open); the open position is marked at
the last close without an exit fee; `sharpe` is the mean over the standard deviation of per-bar
equity returns, annualised with the bars in a 365-day year (crypto trades every day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.assemble import build_engine
from labkit.config import LabkitConfig
from labkit.data.bars import ts_ms
from labkit.data.files import is_file_spec
from labkit.data.registry import open_source
from labkit.engine import SLICE_BARS
from labkit.errors import ConfigError
from labkit.journal import JournalWriter
from labkit.readiness.metrics import max_drawdown
from labkit.session.runner import bars_to_decide, replay_range
from labkit.timeutil import DAY_MS, iso_s, timeframe_ms


@dataclass(frozen=True)
class BacktestResult:
    summary: dict[str, Any]
    equity: pd.Series  # equity at each close


# A synthetic backtest given no range runs the market's latest bars, this many.
DEFAULT_SYNTHETIC_BARS = 10_000


def backtest_config(config: LabkitConfig) -> LabkitConfig:
    """Return `config` with the default range filled in: the last 10,000 synthetic bars when unsaid."""
    s = config.session
    if s.source == "synthetic" and not (s.since or s.max_bars):
        return config.model_copy(
            update={"session": s.model_copy(update={"max_bars": DEFAULT_SYNTHETIC_BARS})}
        )
    return config


def planned_bars(config: LabkitConfig, now: int) -> int | None:
    """Return how many bars a backtest of `config` runs, counted without loading them.

    None when only the data can say: a bar file, or a source read without a range.
    """
    s = config.session
    if is_file_spec(s.source) or not (s.since or s.max_bars):
        return None
    return bars_to_decide(config, now)


def load_backtest_bars(config: LabkitConfig, home: Path, now: int) -> pd.DataFrame:
    """Return the bars a backtest of `config` runs: its range, or the source's whole history.

    Raises ConfigError naming ``session.since`` when the range holds no bar.
    """
    s = config.session
    since, until = replay_range(config, now) if (s.since or s.max_bars) else (0, 2**62)
    bars = open_source(s.source, home, s.seed, config=config).bars(s.symbol, s.timeframe, since, until)
    if s.max_bars:
        bars = bars.iloc[-s.max_bars :]
    if not len(bars):
        raise ConfigError(f"session.since: no bars of {s.symbol} {s.timeframe} in the requested range")
    return bars


def run_backtest(
    config: LabkitConfig,
    bars: pd.DataFrame,
    journal: JournalWriter | None = None,
    progress: Callable[[int], object] | None = None,
) -> BacktestResult:
    """Replay `bars` through a fresh engine and return its summary and equity curve.

    `progress`, when given, is called with the number of bars decided after each slice (a progress
    bar's ``update``); the engine decides a range the same whole or in slices.
    """
    engine = build_engine(config, "backtest", journal=journal)
    if progress is None:
        engine.process(bars)
    else:
        for lo in range(0, len(bars), SLICE_BARS):
            progress(engine.process(bars.iloc[lo : lo + SLICE_BARS]))
    equity = pd.Series(engine.equity_curve(), index=bars.index, name="equity")
    port = engine.portfolio
    summary = summarize(equity, config.session.capital, timeframe_ms(config.session.timeframe))
    summary.update(
        trades=port.entries,
        fills=port.entries + port.exits,
        closed_trades=port.exits,
        open_position=port.position,
        fees=port.fees_paid,
        slippage=port.slippage_paid,
        strategy=engine.strategy.model_id,
        gates=list(config.gates.enabled),
        fee=config.broker.fee,
        slippage_rate=config.broker.slippage,
    )
    return BacktestResult(summary, equity)


def summarize(equity: pd.Series, capital: float, tf_ms: int) -> dict[str, Any]:
    """Return final equity, return, max drawdown and Sharpe of an equity curve (the --json fields)."""
    values = equity.to_numpy(dtype="float64")
    if not len(values):
        return {
            "bars": 0,
            "first_ts": None,
            "last_ts": None,
            "final_equity": capital,
            "return_pct": 0.0,
            "max_drawdown_pct": 0.0,
            "sharpe": 0.0,
        }
    curve = np.concatenate([[capital], values])
    drawdown = max_drawdown(values, capital)
    returns = np.diff(curve) / curve[:-1]
    std = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    bars_per_year = 365 * DAY_MS / tf_ms
    sharpe = float(np.mean(returns) / std * np.sqrt(bars_per_year)) if std > 0 else 0.0
    times = ts_ms(equity.to_frame())
    return {
        "bars": len(values),
        "first_ts": iso_s(int(times[0])),
        "last_ts": iso_s(int(times[-1])),
        "final_equity": float(values[-1]),
        "return_pct": float((values[-1] / capital - 1.0) * 100.0),
        "max_drawdown_pct": drawdown * 100.0,
        "sharpe": sharpe,
    }
