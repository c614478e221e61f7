from __future__ import annotations

import pytest

from labkit.gates.base import Block, run_gates
from labkit.gates.confidence import ConfidenceConfig, ConfidenceGate
from tests import stubs


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [
        (0.56, None),
        (0.55, None),
        (0.549, Block("confidence", "low_confidence", {"confidence": 0.549, "threshold": 0.55})),
        (0.0, Block("confidence", "low_confidence", {"confidence": 0.0, "threshold": 0.55})),
    ],
)
def test_confidence_gate_table(confidence, expected):
    # Arrange
    gate = ConfidenceGate(ConfidenceConfig(min_confidence=0.55))
    # Act
    result = run_gates([gate], stubs.decision_context(confidence=confidence))
    # Assert
    assert result == expected
