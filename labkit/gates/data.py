"""`data`: no decision without enough fresh bars from a working source."""

from __future__ import annotations

from pydantic import Field

from labkit.gates.base import BUY, HOLD, SELL, BarFacts, Block, DecisionContext, Gate, GateConfig


class DataGateConfig(GateConfig):
    stale_after_bars: float = Field(
        2.0, gt=0, le=1_000_000, description="a bar older than this many bars is stale"
    )


class DataGate(Gate):
    """No decision without enough fresh bars from a working source."""

    name = "data"
    order = 20
    reasons = ("insufficient_data:<n>", "stale_data", "data_unavailable")
    Config = DataGateConfig
    config: DataGateConfig
    applies_to = frozenset({BUY, SELL, HOLD})

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

    def check_bars(self, facts: BarFacts) -> list[Block | None]:
        import numpy as np

        n = len(facts.ts)
        if not facts.source_ok:
            return [Block(self.name, "data_unavailable", {}) for _ in range(n)]
        out: list[Block | None] = [None] * n
        age = (facts.now - facts.close_ts) / facts.timeframe_ms
        limit = self.config.stale_after_bars
        for i in np.flatnonzero(age > limit).tolist():
            out[i] = Block(self.name, "stale_data", {"age_bars": round(float(age[i]), 3), "limit": limit})
        # Warm-up comes first in `check`, so it overrides staleness.
        for i in np.flatnonzero(facts.bars_available < facts.bars_needed).tolist():
            have = int(facts.bars_available[i])
            out[i] = Block(self.name, f"insufficient_data:{have}", {"have": have, "need": facts.bars_needed})
        return out

    def describe(self) -> str:
        return (
            "data: hold during warm-up, on bars older than "
            f"{self.config.stale_after_bars:g} bars, and while the source is unavailable"
        )
