"""Issue 18: gate_health judges a gate by the entries it could refuse, those proposed when flat.

Scalping refused 96.7% of the entries a session could make from flat, yet gate_health passed at
78.3%: it also counted the BUYs a strategy kept proposing while it already held a position.
"""

from __future__ import annotations

import numpy as np

from labkit.readiness.weekly import weekly_readiness
from tests.readiness.test_readiness import CONFIG, MINUTE_MS, WEEK, journal

SCALPING = ["scalping", "scalping_trend_too_strong"]


def test_gate_health_when_a_gate_refuses_97_percent_of_flat_entries_fails():
    # Arrange: 100 entry proposals from flat, 97 refused by scalping; 40 more proposed while the
    # session held a position, which pass (there is nothing for them to do)
    frame = journal(n=10_080, tf_ms=MINUTE_MS).assign(position=0.0)
    flat = np.arange(100) * 60 + 30
    held = np.arange(40) * 60 + 45
    frame.loc[np.concatenate([flat, held]), "proposed"] = "BUY"
    frame.loc[flat[:97], ["stage", "reason"]] = SCALPING
    frame.loc[held, "position"] = 1.0
    # Act
    gate = weekly_readiness(frame, WEEK, CONFIG, MINUTE_MS).gate("gate_health")
    # Assert
    assert not gate.passed
    assert gate.figures["entry_proposals"] == 100
    assert gate.figures["top_reason_share"] == 0.97
