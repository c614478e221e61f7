"""`scalping`: no short-horizon entry into a strong trend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import Field

from labkit.gates.base import Block, DecisionContext, Gate, GateConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class ScalpingConfig(GateConfig):
    adx_window: int = Field(14, ge=2, le=10_000, description="bars of the ADX (trend strength, 0-100)")
    max_adx: float = Field(35.0, gt=0, le=100, description="refuse short-horizon entries above this ADX")
    max_horizon: int = Field(
        60,
        ge=1,
        le=1_000_000,
        description="entries of strategies holding at most this many bars are short-horizon",
    )


class ScalpingGate(Gate):
    """Refuse short-horizon entries while the trend is strong (ADX above its limit).

    A strategy that trades a few bars ahead (a model trained with ``horizon`` at most
    ``max_horizon``) is fading noise; in a strong trend that noise is a move against it. Strategies
    that give no horizon (sma_cross, a trend follower) are not short-horizon and always pass.
    """

    name = "scalping"
    order = 50
    reasons = ("scalping_trend_too_strong",)
    Config = ScalpingConfig
    config: ScalpingConfig

    def prepare(
        self, window: pd.DataFrame, facts: Mapping[str, np.ndarray], first: int = 0
    ) -> dict[str, np.ndarray]:
        horizon = facts.get("horizon")
        if horizon is None or not len(horizon) or float(horizon[-1]) > self.config.max_horizon:
            return {}
        import numpy as np

        from labkit.data.bars import bar_columns
        from labkit.features.definitions import adx, adx_lookback

        # Only the bars to decide need a value; the ADX of each reads its own window alone.
        start = max(0, first - adx_lookback(self.config.adx_window) + 1)
        cols = bar_columns(window, last=len(window) - start)
        values = adx(cols["high"], cols["low"], cols["close"], self.config.adx_window)
        return {"adx": np.concatenate([np.full(start, np.nan), values])}

    def check(self, ctx: DecisionContext) -> Block | None:
        value = ctx.facts.get("adx")
        if value is None or value != value or value <= self.config.max_adx:
            return None
        return Block(
            self.name, "scalping_trend_too_strong", {"adx": round(value, 2), "limit": self.config.max_adx}
        )

    def describe(self) -> str:
        return (
            f"scalping: refuse entries of strategies holding <= {self.config.max_horizon} bars while "
            f"ADX({self.config.adx_window}) > {self.config.max_adx:g}"
        )
