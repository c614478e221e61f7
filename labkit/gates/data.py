"""`data`: no decision without enough fresh bars from a working source."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from labkit.gates.base import BUY, HOLD, SELL, Block, DecisionContext, Gate


class DataGateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    stale_after_bars: float = Field(2.0, gt=0, description="a bar older than this many bars is stale")


class DataGate(Gate):
    name = "data"
    applies_to = frozenset({BUY, SELL, HOLD})

    def __init__(self, config: DataGateConfig | None = None) -> None:
        self.config = config or DataGateConfig()

    def check(self, ctx: DecisionContext) -> Block | None:
        if not ctx.source_ok:
            return Block(self.name, "data_unavailable", {})
        if ctx.bars_available < ctx.bars_needed:
            return Block(
                self.name,
                f"insufficient_data:{ctx.bars_available}",
                {"have": ctx.bars_available, "need": ctx.bars_needed},
            )
        age_bars = (ctx.now - ctx.close_ts) / ctx.timeframe_ms
        if age_bars > self.config.stale_after_bars:
            return Block(
                self.name,
                "stale_data",
                {"age_bars": round(age_bars, 3), "limit": self.config.stale_after_bars},
            )
        return None

    def is_fresh(self, now: int, close_ts: int, timeframe_ms: int) -> bool:
        """Return True when a bar closed at `close_ts` is not stale at `now`."""
        return (now - close_ts) / timeframe_ms <= self.config.stale_after_bars

    def describe(self) -> str:
        return (
            "data: hold during warm-up, on bars older than "
            f"{self.config.stale_after_bars:g} bars, and while the source is unavailable"
        )
