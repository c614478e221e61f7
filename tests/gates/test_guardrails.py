from __future__ import annotations

import pytest

from labkit.gates.base import run_gates
from labkit.gates.guardrails import GuardrailsConfig, GuardrailsGate
from tests import stubs


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, None),
        ({"equity": 9_501.0, "day_start_equity": 10_000.0}, None),  # 4.99% down today
        ({"equity": 9_499.0, "day_start_equity": 10_000.0}, "daily_loss_limit"),  # 5.01%
        ({"equity": 7_501.0, "peak_equity": 10_000.0, "day_start_equity": 7_600.0}, None),  # 24.99% drawdown
        ({"equity": 7_499.0, "peak_equity": 10_000.0, "day_start_equity": 7_600.0}, "drawdown_limit"),
        ({"loss_streak": 4}, None),
        ({"loss_streak": 5}, "loss_streak"),
    ],
)
def test_guardrails_gate_table(overrides, expected):
    # Arrange
    gate = GuardrailsGate(GuardrailsConfig(daily_loss_limit=0.05, max_drawdown=0.25, max_loss_streak=5))
    # Act
    result = run_gates([gate], stubs.decision_context(**overrides))
    # Assert
    assert (result.reason if result else None) == expected


def test_guardrails_when_blocking_reports_the_figures():
    gate = GuardrailsGate(GuardrailsConfig(max_loss_streak=3))
    result = run_gates([gate], stubs.decision_context(loss_streak=3))
    assert result is not None and dict(result.detail) == {"streak": 3, "limit": 3}
