"""`risk_budget`: an entry must fit in the exposure budget and the day's risk budget, and be worth placing."""

from __future__ import annotations

import math

from pydantic import Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class RiskBudgetConfig(GateConfig):
    max_exposure_frac: float = Field(1.0, gt=0, le=1, description="position value / equity")
    min_notional: float = Field(10.0, ge=0, le=1e15, description="smallest order worth placing, in quote")
    daily_risk: float = Field(
        0.05, gt=0, le=1, description="risk the day's entries may take / the day's starting equity"
    )


class RiskBudgetGate(Gate):
    """An entry must fit in the exposure and daily risk budgets, and be no smaller than the venue allows."""

    name = "risk_budget"
    order = 70
    reasons = ("risk_budget_exhausted", "below_min_size")
    Config = RiskBudgetConfig
    config: RiskBudgetConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        cfg = self.config
        exposure = ctx.position * ctx.price
        budget = min(cfg.max_exposure_frac * ctx.equity - exposure, ctx.cash)
        if budget < max(cfg.min_notional, 1e-9):
            return Block(
                self.name,
                "risk_budget_exhausted",
                {"exposure": exposure, "budget": budget, "min_notional": cfg.min_notional},
            )
        # Risk is counted only for entries with a stop-loss: without one there is no stop distance.
        if ctx.risk_today > 0 and ctx.day_start_equity > 0:
            used = ctx.risk_today / ctx.day_start_equity
            if used >= cfg.daily_risk:
                return Block(
                    self.name,
                    "risk_budget_exhausted",
                    {
                        "risk_today": ctx.risk_today,
                        "day_start_equity": ctx.day_start_equity,
                        "risk_used": used,
                        "daily_risk": cfg.daily_risk,
                    },
                )
        units = ctx.entry_units
        if not math.isnan(units) and units * ctx.price < cfg.min_notional:
            return Block(
                self.name,
                "below_min_size",
                {"units": units, "notional": units * ctx.price, "min_notional": cfg.min_notional},
            )
        return None

    def describe(self) -> str:
        cfg = self.config
        return (
            f"risk_budget: entries only while exposure < {cfg.max_exposure_frac:.0%} of equity leaves "
            f">= {cfg.min_notional:g} to spend, the day's risk is under {cfg.daily_risk:.2%} of its "
            f"starting equity, and the sized order is >= {cfg.min_notional:g}"
        )
