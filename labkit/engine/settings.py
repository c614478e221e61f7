"""What the engine runs with: the risk and broker configs, and the settings of one engine made of them.

`RiskConfig` (``risk`` in labkit.yaml) sizes entries and sets the exits the engine enforces;
`BrokerConfig` (``broker``) says what a paper fill costs. Both live beside the engine that reads
them, and `labkit.config.schema` composes them into the whole config, as it does each gate's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labkit.timeutil import timeframe_ms

# allow_inf_nan=False: an inf or NaN threshold passes every comparison or none.
_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RiskConfig(BaseModel):
    model_config = _FROZEN
    position_frac: float = Field(1.0, gt=0, le=1, description="share of cash an entry spends (all_in)")
    # all_in keeps sma_cross comparable with other backtesters; risk sizes each entry by its stop.
    sizing: Literal["all_in", "risk"] = "all_in"
    risk_per_trade: float = Field(0.01, gt=0, le=1, description="equity lost if the stop is hit (risk)")
    max_exposure: float = Field(1.0, gt=0, le=1, description="largest position value / equity (risk)")
    atr_window: int = Field(14, ge=1, le=10_000, description="bars in the ATR's simple average")
    stop_atr: float | None = Field(None, gt=0, le=1000, description="stop-loss distance in ATRs")
    take_profit_atr: float | None = Field(None, gt=0, le=1000, description="take-profit distance in ATRs")
    trailing_atr: float | None = Field(None, gt=0, le=1000, description="trailing stop distance in ATRs")
    max_bars: int | None = Field(None, ge=1, le=100_000_000, description="bars a position is held at most")

    @model_validator(mode="after")
    def _risk_needs_a_stop(self) -> RiskConfig:
        # Risk sizing divides by the stop distance: without one there is nothing to size by.
        if self.sizing == "risk" and self.stop_atr is None:
            raise ValueError("sizing: risk needs risk.stop_atr (the stop distance each entry is sized by)")
        return self

    @property
    def exits(self) -> bool:
        """Whether the engine enforces an exit of its own (a stop, a target or a time limit)."""
        levels = (self.stop_atr, self.take_profit_atr, self.trailing_atr, self.max_bars)
        return any(v is not None for v in levels)

    @property
    def atr_bars(self) -> int:
        """Bars the ATR needs (its window plus the close before it), 0 when nothing reads it."""
        return self.atr_window + 1 if self.exits or self.sizing == "risk" else 0


class BrokerConfig(BaseModel):
    model_config = _FROZEN
    fee: float = Field(0.001, ge=0, lt=0.5, description="fraction of each fill's notional")
    slippage: float = Field(0.0, ge=0, lt=0.5, description="adverse fraction of the fill price")

    @property
    def round_trip_cost(self) -> float:
        """Return what an entry and its exit cost, as a fraction of the price: fee and slippage, twice.

        The one definition: the turnover gate weighs an edge against it (``ctx.round_trip_cost``)
        and training labels a move as worth trading only past it.

        Examples
        --------
        >>> BrokerConfig(fee=0.001, slippage=0.0005).round_trip_cost
        0.003
        """
        return 2.0 * (self.fee + self.slippage)


@dataclass(frozen=True)
class EngineSettings:
    """One engine's settings: whose lines it writes (session, mode, market) and its two configs.

    `confidence_floor` is a model's entry threshold: risk sizing scales entries above it.
    """

    session: str
    mode: str  # backtest, shadow or paper
    symbol: str
    timeframe: str
    risk: RiskConfig = field(default_factory=RiskConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    confidence_floor: float | None = None

    @cached_property
    def timeframe_ms(self) -> int:
        return timeframe_ms(self.timeframe)
