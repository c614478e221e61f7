"""`confidence`: refuse entries the signal itself is unsure of."""

from __future__ import annotations

from pydantic import Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class ConfidenceConfig(GateConfig):
    min_confidence: float = Field(0.55, ge=0, le=1)


class ConfidenceGate(Gate):
    """Refuse entries the signal itself is unsure of."""

    name = "confidence"
    order = 40
    reasons = ("low_confidence",)
    Config = ConfidenceConfig
    config: ConfidenceConfig
    applies_to = frozenset({BUY})

    def check(self, ctx: DecisionContext) -> Block | None:
        if ctx.confidence < self.config.min_confidence:
            return Block(
                self.name,
                "low_confidence",
                {"confidence": ctx.confidence, "threshold": self.config.min_confidence},
            )
        return None

    def describe(self) -> str:
        return f"confidence: refuse entries with confidence < {self.config.min_confidence:g}"
