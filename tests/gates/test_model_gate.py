"""The `model` gate: hold without a usable model, refuse entries on drift; never hold an exit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from labkit.gates.base import BarFacts, Block, run_gates
from labkit.gates.model import FEATURE_MISMATCH, MODEL_OK, MODEL_UNAVAILABLE, ModelGate, ModelGateConfig
from tests import stubs

# A model without a calibrated threshold (trained before labkit calibrated one) falls back to max_psi.
FIXED = "fixed max_psi (the model has no calibrated threshold)"
CALIBRATED = {"drift_limit": 2.0, "drift_quantile": 0.99, "drift_windows": 37.0}


@pytest.mark.parametrize(
    ("proposed", "facts", "expected"),
    [
        ("BUY", {}, None),  # a strategy without a model reports nothing
        ("BUY", {"model_status": MODEL_OK, "drift_psi": 0.1}, None),
        ("BUY", {"model_status": MODEL_OK, "drift_psi": float("nan")}, None),  # no full window yet
        ("BUY", {"model_status": MODEL_OK, "drift_psi": 0.31}, Block("model", "model_drift", {"psi": 0.31, "limit": 0.25, "source": FIXED})),
        ("BUY", {"model_status": MODEL_OK, "drift_psi": 0.31, **CALIBRATED}, None),  # within the model's own
        ("BUY", {"model_status": MODEL_OK, "drift_psi": 2.5, **CALIBRATED}, Block("model", "model_drift", {"psi": 2.5, "limit": 2.0, "source": "calibrated q0.99 on 37 training windows"})),
        ("HOLD", {"model_status": MODEL_OK, "drift_psi": 0.31}, None),  # drift concerns entries
        ("BUY", {"model_status": MODEL_UNAVAILABLE}, Block("model", "model_unavailable", {})),
        ("HOLD", {"model_status": MODEL_UNAVAILABLE}, Block("model", "model_unavailable", {})),
        ("HOLD", {"model_status": FEATURE_MISMATCH}, Block("model", "feature_mismatch", {"members_left": 0})),
        ("SELL", {"model_status": MODEL_UNAVAILABLE}, None),  # exits are never held
    ],
)  # fmt: skip
def test_model_gate_table(proposed, facts, expected):
    # Arrange
    gate = ModelGate(ModelGateConfig(max_psi=0.25))
    # Act
    result = run_gates([gate], stubs.decision_context(proposed=proposed, facts=facts))
    # Assert
    assert result == expected


@pytest.mark.parametrize("seed", range(10))
def test_model_gate_when_judging_bars_at_once_answers_as_check_does(seed):
    # Arrange
    rng = random.Random(seed)
    n = rng.randrange(1, 60)
    status = np.array(
        [rng.choice([MODEL_OK, MODEL_OK, MODEL_UNAVAILABLE, FEATURE_MISMATCH]) for _ in range(n)]
    )
    psi = np.array([rng.choice([float("nan"), rng.uniform(0, 0.5)]) for _ in range(n)])
    calibrated = rng.random() < 0.5  # a calibrated model's facts, or an old model's without them
    limits = {
        "drift_limit": np.full(n, 0.3),
        "drift_quantile": np.full(n, 0.99),
        "drift_windows": np.full(n, 12.0),
    }
    sides = np.array([rng.choice([1, 0, -1]) for _ in range(n)], dtype="int8")
    ts = stubs.T0 + 60_000 * np.arange(n, dtype="int64")
    facts = BarFacts(
        ts=ts, close_ts=ts + 60_000, now=ts + 60_000, bars_available=np.arange(1, n + 1), timeframe_ms=60_000,
        bars_needed=1, source_ok=True, signals={"model_status": status, "drift_psi": psi, **(limits if calibrated else {})}, proposed=sides,
    )  # fmt: skip
    gate = ModelGate()
    # Act
    batch = gate.check_bars(facts)
    # Assert
    assert batch is not None
    for i in range(n):
        proposed = {1: "BUY", 0: "HOLD", -1: "SELL"}[int(sides[i])]
        if proposed == "SELL":
            continue  # the engine never asks it about exits
        known = {k: v[i] for k, v in limits.items()} if calibrated else {}
        ctx = stubs.decision_context(
            proposed=proposed, facts={"model_status": status[i], "drift_psi": psi[i], **known}
        )
        assert batch[i] == gate.check(ctx), i
