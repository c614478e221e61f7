"""`model`: no decision from a model that is missing or reads other features, no entry on drift.

Drift is judged against a threshold calibrated on the model's own training data when the model
has one (model.json's ``drift_calibration``, written by `labkit train`), so that a market whose
ordinary days swing widely is not refused every day; a model trained before that falls back to the
fixed ``max_psi``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from labkit.gates.base import BUY, HOLD, BarFacts, Block, DecisionContext, Gate, GateConfig
from labkit.strategies.sides import BUY_CODE

if TYPE_CHECKING:
    import numpy as np


# What a model strategy says of its model at each bar (its `model_status` fact).
MODEL_OK, MODEL_UNAVAILABLE, FEATURE_MISMATCH = 0, 1, 2


class ModelGateConfig(GateConfig):
    max_psi: float = Field(
        0.25,
        gt=0,
        le=100,
        description="drift limit for a model without a calibrated threshold (trained before "
        "labkit calibrated one): the largest population stability index "
        "of a feature over the rolling window against the model's training window",
    )
    drift_window: int = Field(
        1440,
        ge=50,
        le=100_000,
        description="bars in the rolling window of live features whose PSI is compared with the "
        "training window; labkit train calibrates the threshold on windows this long and the model "
        "keeps it (1440 is a day of 1m bars)",
    )
    drift_quantile: float = Field(
        0.99,
        gt=0.5,
        le=1.0,
        description="labkit train sets the drift threshold at this quantile of the PSI of the "
        "training data's own windows",
    )


def calibrate_drift(
    config: ModelGateConfig, matrix: np.ndarray, names: Any, groups: np.ndarray | None = None
) -> dict[str, Any] | None:
    """Return model.json's ``drift_calibration`` for the training rows `matrix` (None: too few rows).

    `labkit train` calls it as it saves a model, with ``gates.model`` (its window and quantile).
    `groups` (a pooled model's symbol of each row, rows in time order) cuts the rows into each
    symbol's own, since each symbol's strategy measures its own window live.
    """
    from labkit.features.drift import calibrate, profile

    parts = [matrix] if groups is None else [matrix[groups == g] for g in dict.fromkeys(groups.tolist())]
    found = calibrate(profile(matrix, names), parts, config.drift_window, config.drift_quantile)
    return None if found is None else found.to_dict()


class ModelGate(Gate):
    """Hold without a usable model; refuse entries while live features drift from the training window.

    It reads what a model strategy reports per bar (``model_status``, ``drift_psi`` and, for a
    calibrated model, ``drift_limit``, ``drift_quantile`` and ``drift_windows``); strategies
    without a model report none and always pass. HOLDs are judged too, so a session whose model
    is missing says so on every line instead of looking merely quiet. Exits are never held.
    """

    name = "model"
    order = 30
    reasons = ("model_unavailable", "feature_mismatch", "model_drift")
    Config = ModelGateConfig
    config: ModelGateConfig
    applies_to = frozenset({BUY, HOLD})

    def check(self, ctx: DecisionContext) -> Block | None:
        facts = ctx.facts
        limit = (facts.get("drift_limit"), facts.get("drift_quantile"), facts.get("drift_windows"))
        return self._judge(ctx.proposed, facts.get("model_status"), facts.get("drift_psi"), limit)

    def check_bars(self, facts: BarFacts) -> list[Block | None] | None:
        status = facts.signals.get("model_status")
        if status is None:
            return [None] * len(facts.ts)
        if facts.proposed is None:
            return None  # drift concerns entries alone: without the proposals, ask bar by bar
        import numpy as np

        psi = facts.signals.get("drift_psi")
        calibrated = facts.signals.get("drift_limit")
        entry = facts.proposed == BUY_CODE
        flagged = status != MODEL_OK
        if psi is not None:
            limit = np.full(len(status), self.config.max_psi)
            if calibrated is not None:
                limit = np.where(np.isnan(calibrated), limit, calibrated)
            with np.errstate(invalid="ignore"):
                flagged |= entry & (psi > limit)
        out: list[Block | None] = [None] * len(status)
        for i in np.flatnonzero(flagged).tolist():  # the few bars that block, judged as `check` does
            side = BUY if entry[i] else HOLD
            source = tuple(  # the calibration facts, as `check` reads them
                None if (v := facts.signals.get(k)) is None else float(v[i])
                for k in ("drift_limit", "drift_quantile", "drift_windows")
            )
            out[i] = self._judge(side, float(status[i]), None if psi is None else float(psi[i]), source)
        return out

    def limit(self, calibration: tuple[Any, ...]) -> tuple[float, str]:
        """Return the drift threshold and where it came from, given the strategy's calibration facts.

        A calibrated model's threshold, e.g. ``calibrated q0.99 on 37 training windows``; otherwise
        ``max_psi``, said to be fixed.
        """
        threshold, quantile, windows = calibration
        if threshold is None or math.isnan(threshold):
            return self.config.max_psi, "fixed max_psi (the model has no calibrated threshold)"
        q = "" if quantile is None or math.isnan(quantile) else f" q{quantile:g}"
        on = "" if windows is None or math.isnan(windows) else f" on {int(windows)} training windows"
        return float(threshold), f"calibrated{q}{on}"

    def _judge(
        self,
        proposed: str,
        status: float | None,
        psi: float | None,
        calibration: tuple[Any, ...] = (None, None, None),
    ) -> Block | None:
        if status is None:
            return None
        if status == MODEL_UNAVAILABLE:
            return Block(self.name, "model_unavailable", {})
        if status == FEATURE_MISMATCH:
            return Block(self.name, "feature_mismatch", {"members_left": 0})
        if proposed == BUY and psi is not None and not math.isnan(psi):
            limit, source = self.limit(calibration)
            if psi > limit:
                return Block(
                    self.name,
                    "model_drift",
                    {"psi": round(psi, 4), "limit": round(limit, 4), "source": source},
                )
        return None

    def describe(self) -> str:
        return (
            "model: hold without a usable model; refuse entries when a feature's PSI over the rolling "
            "window against the training window exceeds the model's calibrated threshold (without "
            f"one: {self.config.max_psi:g})"
        )
