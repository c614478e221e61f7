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


def test_risk_budget_when_day_risk_reaches_daily_risk_blocks_with_figures():
    # Arrange: 500 of 10,000 taken today is the whole 5% budget
    gate = RiskBudgetGate(RiskBudgetConfig(daily_risk=0.05))
    ctx = stubs.decision_context(risk_today=500.0, day_start_equity=10_000.0)
    # Act
    block = run_gates([gate], ctx)
    # Assert
    assert block == Block(
        "risk_budget",
        "risk_budget_exhausted",
        {"risk_today": 500.0, "day_start_equity": 10_000.0, "risk_used": 0.05, "daily_risk": 0.05},
    )


def test_risk_budget_when_day_risk_under_daily_risk_passes():
    gate = RiskBudgetGate(RiskBudgetConfig(daily_risk=0.05))
    assert run_gates([gate], stubs.decision_context(risk_today=499.0, day_start_equity=10_000.0)) is None


def test_risk_budget_when_sized_entry_under_min_notional_blocks_below_min_size():
    # Arrange: 0.05 units at 100 is 5 of quote, under the 10 minimum
    gate = RiskBudgetGate(RiskBudgetConfig(min_notional=10.0))
    # Act
    block = run_gates([gate], stubs.decision_context(entry_units=0.05, price=100.0))
    # Assert
    assert block == Block(
        "risk_budget", "below_min_size", {"units": 0.05, "notional": 5.0, "min_notional": 10.0}
    )


def test_risk_budget_when_sized_entry_at_min_notional_passes():
    gate = RiskBudgetGate(RiskBudgetConfig(min_notional=10.0))
    assert run_gates([gate], stubs.decision_context(entry_units=0.1, price=100.0)) is None
