"""`halt`: an emergency stop, a halt or reduce-only refuses new entries; exits stay allowed."""

from __future__ import annotations

from labkit.gates.base import BUY, BarFacts, Block, DecisionContext, Gate, GateConfig


class HaltConfig(GateConfig):
    pass


class HaltGate(Gate):
    """Refuse entries while the session is emergency-stopped, halted or reduce-only; exits stay allowed."""

    name = "halt"
    order = 10
    reasons = ("emergency_stop", "halted:<why>", "reduce_only")
    Config = HaltConfig
    config: HaltConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        return self._judge(ctx.halted, ctx.reduce_only, ctx.halt_reason)

    def check_bars(self, facts: BarFacts) -> list[Block | None]:
        # A halt holds for a whole run of bars: commands apply between runs.
        return [self._judge(facts.halted, facts.reduce_only, facts.halt_reason)] * len(facts.ts)

    def _judge(self, halted: bool, reduce_only: bool, halt_reason: str | None) -> Block | None:
        if not halted:
            return Block(self.name, "reduce_only", {}) if reduce_only else None
        why = halt_reason or "emergency_stop"
        reason = "emergency_stop" if why == "emergency_stop" else f"halted:{why}"
        return Block(self.name, reason, {"halt_reason": why})

    def describe(self) -> str:
        return "halt: refuse entries while the session is emergency-stopped, halted or reduce-only"
