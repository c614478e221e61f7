"""`model`: no decision from a model that is missing or reads other features, no entry on drift."""

from __future__ import annotations

import math

from pydantic import Field

from labkit.gates.base import BUY, HOLD, BarFacts, Block, DecisionContext, Gate, GateConfig
from labkit.strategies.sides import BUY_CODE

# What a model strategy says of its model at each bar (its `model_status` fact).
MODEL_OK, MODEL_UNAVAILABLE, FEATURE_MISMATCH = 0, 1, 2


class ModelGateConfig(GateConfig):
    max_psi: float = Field(
        0.25,
        gt=0,
        le=100,
        description="drift limit: the largest population stability index of a feature against the "
        "model's training window (0.1 is worth watching, 0.25 is a shift)",
    )


class ModelGate(Gate):
    """Hold without a usable model; refuse entries while live features drift from the training window.

    It reads what a model strategy reports per bar (``model_status``, ``drift_psi``); strategies
    without a model report neither and always pass. HOLDs are judged too, so a session whose model
    is missing says so on every line instead of looking merely quiet. Exits are never held.
    """

    name = "model"
    order = 30
    reasons = ("model_unavailable", "feature_mismatch", "model_drift")
    Config = ModelGateConfig
    config: ModelGateConfig
    applies_to = frozenset({BUY, HOLD})

    def check(self, ctx: DecisionContext) -> Block | None:
        return self._judge(ctx.proposed, ctx.facts.get("model_status"), ctx.facts.get("drift_psi"))

    def check_bars(self, facts: BarFacts) -> list[Block | None] | None:
        status = facts.signals.get("model_status")
        if status is None:
            return [None] * len(facts.ts)
        if facts.proposed is None:
            return None  # drift concerns entries alone: without the proposals, ask bar by bar
        import numpy as np

        psi = facts.signals.get("drift_psi")
        entry = facts.proposed == BUY_CODE
        flagged = status != MODEL_OK
        if psi is not None:
            with np.errstate(invalid="ignore"):
                flagged |= entry & (psi > self.config.max_psi)
        out: list[Block | None] = [None] * len(status)
        for i in np.flatnonzero(flagged).tolist():  # the few bars that block, judged as `check` does
            side = BUY if entry[i] else HOLD
            out[i] = self._judge(side, float(status[i]), None if psi is None else float(psi[i]))
        return out

    def _judge(self, proposed: str, status: float | None, psi: float | None) -> Block | None:
        if status is None:
            return None
        if status == MODEL_UNAVAILABLE:
            return Block(self.name, "model_unavailable", {})
        if status == FEATURE_MISMATCH:
            return Block(self.name, "feature_mismatch", {"members_left": 0})
        if proposed == BUY and psi is not None and not math.isnan(psi) and psi > self.config.max_psi:
            return Block(self.name, "model_drift", {"psi": round(psi, 4), "limit": self.config.max_psi})
        return None

    def describe(self) -> str:
        return (
            "model: hold without a usable model; refuse entries when a feature's PSI against the "
            f"training window exceeds {self.config.max_psi:g}"
        )
