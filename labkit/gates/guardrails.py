"""`guardrails`: stop opening positions after a bad day, a deep drawdown or a losing streak."""

from __future__ import annotations

from pydantic import Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class GuardrailsConfig(GateConfig):
    daily_loss_limit: float = Field(0.05, gt=0, lt=1, description="loss since the UTC day began")
    max_drawdown: float = Field(0.25, gt=0, lt=1, description="from the equity peak")
    max_loss_streak: int = Field(
        5, ge=1, le=1_000_000, description="losing round trips in a row (reset daily)"
    )


class GuardrailsGate(Gate):
    """Stop opening positions after a bad day, a deep drawdown or a losing streak."""

    name = "guardrails"
    order = 80
    reasons = ("daily_loss_limit", "drawdown_limit", "loss_streak")
    Config = GuardrailsConfig
    config: GuardrailsConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        cfg = self.config
        if ctx.day_start_equity > 0:
            day_loss = 1.0 - ctx.equity / ctx.day_start_equity
            if day_loss >= cfg.daily_loss_limit:
                return Block(self.name, "daily_loss_limit", {"loss": day_loss, "limit": cfg.daily_loss_limit})
        if ctx.drawdown >= cfg.max_drawdown:
            return Block(self.name, "drawdown_limit", {"drawdown": ctx.drawdown, "limit": cfg.max_drawdown})
        if ctx.loss_streak >= cfg.max_loss_streak:
            return Block(self.name, "loss_streak", {"streak": ctx.loss_streak, "limit": cfg.max_loss_streak})
        return None

    def describe(self) -> str:
        cfg = self.config
        return (
            f"guardrails: refuse entries after a {cfg.daily_loss_limit:.1%} daily loss, a "
            f"{cfg.max_drawdown:.1%} drawdown or {cfg.max_loss_streak} losing trades in a row"
        )
