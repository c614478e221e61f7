from __future__ import annotations

import math

import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.turnover import TurnoverConfig, TurnoverGate
from tests import stubs

COST = 2 * (0.001 + 0.0005)  # round trip: fee and slippage, in and out


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"trades_today": 9}, None),
        ({"trades_today": 10}, Block("turnover", "max_daily_trades", {"trades_today": 10, "limit": 10})),
        ({"expected_edge": 2.0 * COST + 1e-9}, None),
        (
            {"expected_edge": 2.0 * COST - 1e-6},
            Block(
                "turnover",
                "edge_below_cost",
                {"edge": 2.0 * COST - 1e-6, "required": 2.0 * COST, "cost": COST},
            ),
        ),
        # A rule with no edge estimate is judged by the daily cap alone.
        ({"expected_edge": math.nan}, None),
    ],
)
def test_turnover_gate_table(overrides, expected):
    # Arrange
    gate = TurnoverGate(TurnoverConfig(min_ratio=2.0, max_daily=10))
    ctx = stubs.decision_context(fee=0.001, slippage=0.0005, **overrides)
    # Act
    result = run_gates([gate], ctx)
    # Assert
    assert result == expected
