"""The source of a tiny third-party plug-in: a gate, a strategy and a source for labkit.

`tests/test_plugins.py` packs this file as the module ``labkit_plugin_demo`` into a wheel whose
entry points name these classes, installs it with pip, and runs it through ``labkit backtest``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from labkit.data.bars import make_bars
from labkit.data.registry import Source, SourceContext
from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig
from labkit.strategies.base import BUY_CODE, SELL_CODE, Signals, Strategy, StrategyConfig
from labkit.timeutil import timeframe_ms


class OddMinuteConfig(GateConfig):
    modulus: int = Field(2, ge=2, description="block entries on bars whose minute is odd in this modulus")


class OddMinuteGate(Gate):
    """Refuse entries on bars that open on an odd minute."""

    name = "odd_minute"
    order = 65
    reasons = ("odd_minute",)
    Config = OddMinuteConfig
    config: OddMinuteConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        minute = ctx.ts // 60_000
        if minute % self.config.modulus:
            return Block(self.name, "odd_minute", {"minute": minute % 60})
        return None

    def describe(self) -> str:
        return "odd_minute: refuse entries on odd minutes"


class EveryNConfig(StrategyConfig):
    every: int = Field(7, ge=2, description="bars between an entry and the next")
    hold: int = Field(3, ge=1, description="bars a position is held")


class EveryN(Strategy):
    """Buy every `every` bars and sell `hold` bars later."""

    name = "every_n"
    Config = EveryNConfig
    config: EveryNConfig

    def __init__(self, config: EveryNConfig | None = None, **params: object) -> None:
        super().__init__(config, **params)
        self.model_id = f"every_n-{self.config.every}-{self.config.hold}"
        self.warmup = 1

    def propose(self, bars: pd.DataFrame) -> Signals:
        minutes = bars.index.as_unit("ms").asi8 // 60_000
        side = np.zeros(len(bars), dtype="int8")
        side[minutes % self.config.every == 0] = BUY_CODE
        side[minutes % self.config.every == self.config.hold] = SELL_CODE
        return Signals(side, np.where(side != 0, 1.0, np.nan), np.full(len(bars), np.nan))


class RampSource(Source):
    """A price that climbs one unit per bar from 100, for any symbol."""

    kinds = ("ramp",)

    def __init__(self) -> None:
        self.spec = "ramp"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> RampSource:
        return cls()

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        tf = timeframe_ms(timeframe)
        first = -(-since_ms // tf) * tf
        times = np.arange(first, until_ms, tf, dtype="int64")
        close = 100.0 + (times - times[0]) / tf if len(times) else np.empty(0)
        open_ = close - 0.5
        return make_bars(
            times,
            {
                "open": open_,
                "high": close + 0.25,
                "low": open_ - 0.25,
                "close": close,
                "volume": np.ones(len(times)),
            },
        )
