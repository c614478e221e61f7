from __future__ import annotations

import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.data import DataGate, DataGateConfig
from tests import stubs

MINUTE = stubs.MINUTE


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"bars_available": 31, "bars_needed": 31}, None),
        (
            {"bars_available": 30, "bars_needed": 31},
            Block("data", "insufficient_data:30", {"have": 30, "need": 31}),
        ),
        (
            {"bars_available": 0, "bars_needed": 31},
            Block("data", "insufficient_data:0", {"have": 0, "need": 31}),
        ),
        ({"source_ok": False}, Block("data", "data_unavailable", {})),
        # age measured from the bar's close: 2.0 bars old is still fresh, 2.5 is stale
        ({"now": stubs.T0 + MINUTE + 2 * MINUTE}, None),
        ({"now": stubs.T0 + MINUTE + 150_000}, Block("data", "stale_data", {"age_bars": 2.5, "limit": 2.0})),
    ],
)
def test_data_gate_table(overrides, expected):
    # Arrange
    gate = DataGate(DataGateConfig(stale_after_bars=2.0))
    ctx = stubs.decision_context(**overrides)
    # Act
    result = run_gates([gate], ctx)
    # Assert
    assert result == expected


@pytest.mark.parametrize("proposed", ["BUY", "SELL", "HOLD"])
def test_data_gate_when_warming_up_blocks_every_proposal(proposed):
    ctx = stubs.decision_context(proposed=proposed, bars_available=5)
    assert proposed in DataGate.applies_to
    assert run_gates([DataGate()], ctx).reason == "insufficient_data:5"
