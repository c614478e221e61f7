from __future__ import annotations

import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.risk_budget import RiskBudgetConfig, RiskBudgetGate
from tests import stubs


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"proposed": "BUY"}, None),
        # 10.01 left to spend is just over the 10.0 minimum; 9.99 is just under
        ({"proposed": "BUY", "cash": 10.01, "position": 99.8999, "price": 100.0}, None),
        (
            {"proposed": "BUY", "cash": 9.99, "position": 99.9001, "price": 100.0, "equity": 10_000.0},
            "risk_budget_exhausted",
        ),
    ],
)
def test_risk_budget_gate_table(overrides, expected):
    # Arrange
    gate = RiskBudgetGate(RiskBudgetConfig(max_exposure_frac=1.0, min_notional=10.0))
    # Act
    result = run_gates([gate], stubs.decision_context(**overrides))
    # Assert
    assert (result.reason if result else None) == expected


def test_risk_budget_when_exposure_limit_reached_names_numbers():
    gate = RiskBudgetGate(RiskBudgetConfig(max_exposure_frac=0.5, min_notional=10.0))
    ctx = stubs.decision_context(position=50.0, price=100.0, cash=5_000.0, equity=10_000.0)
    assert run_gates([gate], ctx) == Block(
        "risk_budget", "risk_budget_exhausted", {"exposure": 5000.0, "budget": 0.0, "min_notional": 10.0}
    )


def test_risk_budget_when_exit_proposed_does_not_apply():
    assert RiskBudgetGate.applies_to == frozenset({"BUY"})
