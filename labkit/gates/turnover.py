"""`turnover`: trade only when the expected edge pays the costs, and not too often in a day."""

from __future__ import annotations

import math

from pydantic import Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class TurnoverConfig(GateConfig):
    min_ratio: float = Field(
        2.0, ge=0, le=1_000_000, description="expected edge must be >= this x round-trip cost"
    )
    max_daily: int = Field(
        10, ge=1, le=1_000_000, description="trades (entries) per UTC day; more are refused"
    )


class TurnoverGate(Gate):
    """Trade only when the expected edge pays the costs, and not too often in a day."""

    name = "turnover"
    order = 60
    reasons = ("edge_below_cost", "max_daily_trades")
    Config = TurnoverConfig
    config: TurnoverConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        if ctx.trades_today >= self.config.max_daily:
            return Block(
                self.name,
                "max_daily_trades",
                {"trades_today": ctx.trades_today, "limit": self.config.max_daily},
            )
        # A rule-based strategy gives no edge estimate (NaN); only the daily cap applies to it.
        if not math.isnan(ctx.expected_edge):
            required = self.config.min_ratio * ctx.round_trip_cost
            if ctx.expected_edge < required:
                return Block(
                    self.name,
                    "edge_below_cost",
                    {"edge": ctx.expected_edge, "required": required, "cost": ctx.round_trip_cost},
                )
        return None

    def describe(self) -> str:
        return (
            f"turnover: refuse entries whose edge < {self.config.min_ratio:g} x round-trip cost, "
            f"or beyond {self.config.max_daily} trades per UTC day"
        )
