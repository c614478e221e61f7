"""Factories that return valid defaults; a test overrides only what it is about."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.data.bars import make_bars
from labkit.engine.settings import BrokerConfig
from labkit.gates import DecisionContext

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_CSV = FIXTURES / "btc_usdt_1m.csv"
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z
MINUTE = 60_000


def bars(
    closes: list[float] | np.ndarray | None = None,
    n: int = 50,
    start: int = T0,
    step: int = MINUTE,
    opens: list[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Return valid bars: given closes (opens default to the previous close) or a gentle zigzag."""
    if closes is None:
        closes = 100.0 + np.sin(np.arange(n) / 3.0)
    closes = np.asarray(closes, dtype="float64")
    if opens is None:
        opens = np.concatenate([[closes[0]], closes[:-1]])
    opens = np.asarray(opens, dtype="float64")
    times = start + step * np.arange(len(closes), dtype="int64")
    return make_bars(
        times,
        {
            "open": opens,
            "close": closes,
            "high": np.maximum(opens, closes) * 1.001,
            "low": np.minimum(opens, closes) * 0.999,
            "volume": np.full(len(closes), 10.0),
        },
    )


def decision_context(**overrides: Any) -> DecisionContext:
    """Return a context for a BUY that every gate passes with default configs."""
    fields: dict[str, Any] = dict(
        ts=T0,
        close_ts=T0 + MINUTE,
        now=T0 + MINUTE,
        timeframe_ms=MINUTE,
        price=100.0,
        proposed="BUY",
        confidence=0.8,
        expected_edge=float("nan"),
        bars_available=100,
        bars_needed=31,
        source_ok=True,
        position=0.0,
        cash=10_000.0,
        equity=10_000.0,
        peak_equity=10_000.0,
        day_start_equity=10_000.0,
        trades_today=0,
        loss_streak=0,
        halted=False,
        reduce_only=False,
        halt_reason=None,
        fee=0.001,
        slippage=0.0,
    )
    fields.update(overrides)
    if "round_trip_cost" not in overrides:
        fields["round_trip_cost"] = BrokerConfig(
            fee=fields["fee"], slippage=fields["slippage"]
        ).round_trip_cost
    return DecisionContext(**fields)


def replayed_session(home: Path, name: str, since: str, until: str, **overrides: Any) -> Path:
    """Replay a synthetic paper session into `home` (fast pace) and return the home."""
    from labkit.config.loading import load_config
    from labkit.session.runner import run_session

    settings = {"session.name": name, "session.pace": "fast", "session.since": since, "session.until": until}
    run_session(load_config(None, {**settings, **overrides}, environ={}), home, progress=False)
    return home


class SimulatedTime(threading.Event):
    """A wall clock for tests, and the stop event of a run on it: waiting moves the clock on.

    A clock-paced session run with ``clock=time.now`` and ``stop=time`` decides each bar as it
    closes, as a live session does, but a week of bars takes moments: where the session would wait,
    nothing happens until the next bar closes, so the clock jumps to `lag_ms` after that close.
    """

    def __init__(self, start_ms: int, timeframe_ms: int, lag_ms: int = 150) -> None:
        super().__init__()
        self.ms, self.tf, self.lag = start_ms, timeframe_ms, lag_ms

    def now(self) -> int:
        return self.ms

    def wait(self, timeout: float | None = None) -> bool:
        self.ms = (self.ms // self.tf + 1) * self.tf + self.lag
        return self.is_set()


def forward_session(home: Path, name: str, since: str, until: str, **overrides: Any) -> Path:
    """Run a synthetic session in `home` on a `SimulatedTime` wall clock: forward evidence, fast."""
    from labkit.config.loading import load_config
    from labkit.session.runner import run_session
    from labkit.timeutil import parse_instant, timeframe_ms

    settings = {"session.name": name, "session.pace": "clock", "session.since": since, "session.until": until}
    config = load_config(None, {**settings, **overrides}, environ={})
    time = SimulatedTime(parse_instant(since), timeframe_ms(config.session.timeframe))
    run_session(config, home, stop=time, clock=time.now, progress=False)
    return home


def sine_bar_file(path: Path, period: float = 7.0) -> str:
    """Write hourly bars of a sine wave (5% swings every `period` hours), 2025-12-22 to 2026-01-19.

    sma_cross with windows 1 and 2 trades it profitably about 24 times a week: a market on which an
    honest verdict can be READY. Returns the ``csv:`` source spec.
    """
    times = pd.date_range("2025-12-22", "2026-01-19", freq="h", inclusive="left", tz="UTC")
    closes = 100 * (1 + 0.05 * np.sin(2 * np.pi * np.arange(len(times)) / period))
    opens = np.r_[closes[0], closes[:-1]]
    pd.DataFrame(
        {
            "timestamp": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": opens,
            "high": np.maximum(opens, closes) * 1.001,
            "low": np.minimum(opens, closes) * 0.999,
            "close": closes,
            "volume": 1.0,
        }
    ).to_csv(path, index=False)
    return f"csv:{path}"


SINE_SESSION = {
    "session.symbol": "SINE/USD",
    "session.timeframe": "1h",
    "session.mode": "shadow",
    "session.strategy": "sma_cross",
    "strategies.sma_cross.fast": 1,
    "strategies.sma_cross.slow": 2,
}


def labkit_cmd(home: Path | None, *args: str) -> list[str]:
    """Return the argv of `labkit [--home HOME] ARGS...` run by this interpreter (the one helper)."""
    home_args = ["--home", str(home)] if home is not None else []
    return [sys.executable, "-m", "labkit.cli", *home_args, *args]


def run_labkit(home: Path | None, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `labkit` in a child process to the end and return it, output captured as text."""
    kwargs.setdefault("timeout", 120)
    return subprocess.run(labkit_cmd(home, *args), capture_output=True, text=True, **kwargs)


def start_labkit(home: Path | None, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start `labkit` in a child process and return at once (stdout dropped, stderr kept)."""
    kwargs.setdefault("stdout", subprocess.DEVNULL)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(labkit_cmd(home, *args), text=True, **kwargs)
