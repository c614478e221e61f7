"""`risk_budget`: an entry must fit in what is left of the exposure budget."""

from __future__ import annotations

from pydantic import Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class RiskBudgetConfig(GateConfig):
    max_exposure_frac: float = Field(1.0, gt=0, le=1, description="position value / equity")
    min_notional: float = Field(10.0, ge=0, le=1e15, description="smallest order worth placing, in quote")


class RiskBudgetGate(Gate):
    """An entry must fit in what is left of the exposure budget."""

    name = "risk_budget"
    order = 70
    reasons = ("risk_budget_exhausted",)
    Config = RiskBudgetConfig
    config: RiskBudgetConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        exposure = ctx.position * ctx.price
        budget = min(self.config.max_exposure_frac * ctx.equity - exposure, ctx.cash)
        if budget < max(self.config.min_notional, 1e-9):
            return Block(
                self.name,
                "risk_budget_exhausted",
                {"exposure": exposure, "budget": budget, "min_notional": self.config.min_notional},
            )
        return None

    def describe(self) -> str:
        return (
            f"risk_budget: entries only while exposure < {self.config.max_exposure_frac:.0%} of "
            f"equity leaves >= {self.config.min_notional:g} to spend"
        )
