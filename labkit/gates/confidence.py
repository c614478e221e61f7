"""`confidence`: refuse entries the signal itself is unsure of."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from labkit.gates.base import BUY, Block, DecisionContext, Gate


class ConfidenceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min_confidence: float = Field(0.55, ge=0, le=1)


class ConfidenceGate(Gate):
    name = "confidence"
    applies_to = frozenset({BUY})

    def __init__(self, config: ConfidenceConfig | None = None) -> None:
        self.config = config or ConfidenceConfig()

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
