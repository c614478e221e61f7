"""The `scalping` gate: no short-horizon entry into a strong trend; trend followers always pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.scalping import ScalpingConfig, ScalpingGate
from tests import stubs


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, None),  # no ADX prepared: a strategy without a horizon
        ({"adx": 34.9}, None),
        ({"adx": 35.0}, None),
        ({"adx": 41.234}, Block("scalping", "scalping_trend_too_strong", {"adx": 41.23, "limit": 35.0})),
        ({"adx": float("nan")}, None),  # warm-up of the ADX itself
    ],
)
def test_scalping_gate_table(facts, expected):
    # Arrange
    gate = ScalpingGate(ScalpingConfig(max_adx=35.0))
    # Act
    result = run_gates([gate], stubs.decision_context(facts=facts))
    # Assert
    assert result == expected


def _trend(n: int) -> pd.DataFrame:
    close = 100.0 + np.arange(n, dtype=float)  # a straight climb: ADX near 100
    index = pd.to_datetime(stubs.T0 + 60_000 * np.arange(n), unit="ms", utc=True)
    return pd.DataFrame(
        {"open": close - 0.5, "high": close + 0.5, "low": close - 1.0, "close": close, "volume": 1.0},
        index=index,
    )


@pytest.mark.parametrize(("horizon", "prepared"), [(None, False), (15.0, True), (61.0, False), (60.0, True)])
def test_scalping_gate_when_preparing_reads_adx_only_for_short_horizons(horizon, prepared):
    # Arrange
    gate = ScalpingGate(ScalpingConfig(max_horizon=60))
    bars = _trend(80)
    facts = {} if horizon is None else {"horizon": np.full(len(bars), horizon)}
    # Act
    out = gate.prepare(bars, facts)
    # Assert
    assert ("adx" in out) is prepared
    if prepared:
        assert len(out["adx"]) == len(bars) and out["adx"][-1] > 90
