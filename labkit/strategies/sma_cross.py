"""`sma_cross`: the rule-based baseline, defined exactly so other backtesters can check it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from labkit.strategies.base import Signals, Strategy, StrategyConfig
from labkit.strategies.sides import BUY_CODE, SELL_CODE


class SmaCrossConfig(StrategyConfig):
    # Each average costs a pass per bar of its window: past 100,000 bars that is minutes per run.
    fast: int = Field(10, ge=1, le=100_000, description="fast simple moving average, in bars")
    slow: int = Field(30, ge=2, le=100_000, description="slow simple moving average, in bars")

    @model_validator(mode="after")
    def _slow_after_fast(self) -> SmaCrossConfig:
        if self.slow <= self.fast:
            raise ValueError(f"slow ({self.slow}) must be greater than fast ({self.fast})")
        return self


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


class SmaCross(Strategy):
    """Buy when the fast SMA of closes crosses above the slow one, sell when it crosses below.

    A cross up at bar t (``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]``) proposes BUY, a cross
    down proposes SELL. A rule has no probability: a cross has confidence 1 and no edge estimate.
    """

    name = "sma_cross"
    Config = SmaCrossConfig
    config: SmaCrossConfig

    def __init__(self, config: SmaCrossConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.fast, self.slow = self.config.fast, self.config.slow
        self.model_id = f"sma_cross-{self.fast}-{self.slow}"
        self.warmup = self.slow + 1  # the cross at t looks at t-1's slow average too

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
