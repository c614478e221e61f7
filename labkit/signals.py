"""Strategies turn bars into proposals: BUY, SELL or HOLD for each bar, with a confidence.

A strategy sees only bars up to and including the one it proposes for. Its `propose` works on a
whole window at once (fast for replays) and gives bar t the same numbers whether the window is a
year of history or just its own lookback (what a live session passes); the engine relies on that
for paper/backtest parity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

BUY_CODE, HOLD_CODE, SELL_CODE = 1, 0, -1


@dataclass(frozen=True)
class Signals:
    """Per-bar proposals: `side` in {1 BUY, 0 HOLD, -1 SELL}; NaN confidence/edge = no estimate."""

    side: np.ndarray  # int8
    confidence: np.ndarray  # float64 in [0, 1]
    expected_edge: np.ndarray  # float64, fraction per round trip


class Strategy(Protocol):
    """What the engine needs from a signal source; the ML signal plugs in here."""

    model_id: str
    warmup: int  # bars needed before the first proposal

    def propose(self, bars: pd.DataFrame) -> Signals:
        """Return one proposal per row of `bars`, using only rows at or before each one."""
        ...


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Return the simple moving average, NaN until `window` values exist.

    Each mean is summed left to right over its own window, so a bar's value never depends on
    how much history came before it.

    Examples
    --------
    >>> sma(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([nan, 1.5, 2.5, 3.5])
    """
    n = len(values)
    out = np.full(n, np.nan)
    if n >= window:
        total = values[: n - window + 1].copy()
        for offset in range(1, window):
            total += values[offset : n - window + 1 + offset]
        out[window - 1 :] = total / window
    return out


class SmaCross:
    """DESIGN.md's rule-based baseline: BUY when the fast SMA crosses above the slow one.

    A cross up at bar t (``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]``) proposes BUY, a cross
    down proposes SELL. A rule has no probability: a cross has confidence 1 and no edge estimate.
    """

    def __init__(self, fast: int = 10, slow: int = 30) -> None:
        if not 1 <= fast < slow:
            raise ValueError(f"sma_cross needs 1 <= fast < slow (got fast={fast}, slow={slow})")
        self.fast = fast
        self.slow = slow
        self.model_id = f"sma_cross-{fast}-{slow}"
        self.warmup = slow + 1  # the cross at t looks at t-1's slow average too

    def propose(self, bars: pd.DataFrame) -> Signals:
        close = bars["close"].to_numpy(dtype="float64")
        fast, slow = sma(close, self.fast), sma(close, self.slow)
        side = np.zeros(len(close), dtype="int8")
        if len(close) > 1:
            prev_f, prev_s, cur_f, cur_s = fast[:-1], slow[:-1], fast[1:], slow[1:]
            with np.errstate(invalid="ignore"):
                side[1:][(prev_f < prev_s) & (cur_f > cur_s)] = BUY_CODE
                side[1:][(prev_f > prev_s) & (cur_f < cur_s)] = SELL_CODE
        confidence = np.where(side != 0, 1.0, np.nan)
        return Signals(side, confidence, np.full(len(close), np.nan))


def make_strategy(name: str, fast: int = 10, slow: int = 30) -> Strategy:
    """Return the strategy a config names."""
    if name == "sma_cross":
        return SmaCross(fast, slow)
    raise ValueError(f"unknown strategy {name!r}; allowed: sma_cross")
